//! The inspector (`/ui`): over plain HTTP (login, cookies, headers, escaping, the one
//! write and its scope), then in a real browser (headless Chromium over WebDriver).
//!
//! The browser test needs `chromedriver` and `chromium` (Debian's `chromium-driver`,
//! installed by `scripts/setup.sh test`); `AURA_SKIP_BROWSER=1` skips it with a message.
//! Screenshots go to `$CARGO_TARGET_TMPDIR/ui-screenshots`, or to
//! `AURA_UI_SCREENSHOTS` when set (how the README's were made).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test fixtures: a failed setup should panic loudly
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aura_gateway::{GatewayConfig, Scope};
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::gateway::{create, server, server_with, Server, TOKEN};

/// A method whose source tries to run script in whoever reads it.
const HOSTILE: &str = "def shout(self):\n    return \"<script>window.pwned = 1</script>\\\"><img src=x onerror=\\\"window.pwned = 2\\\">\"\n";

/// A client that keeps cookies and does not follow redirects, so each hop is seen.
fn browserless() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

async fn define(s: &Server, object: &str, selector: &str, source: &str) {
    let r = s
        .http
        .put(s.url(&format!("/v1/objects/{object}/methods/{selector}")))
        .bearer_auth(TOKEN)
        .json(&json!({ "source": source, "doc": "<b>bold</b> claims" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
}

/// `aura.shout`'s versions, through the API.
async fn shout_versions(s: &Server) -> Value {
    s.get("/v1/objects/aura/methods/shout")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The inspector's rollback form for `aura.shout`, posted as if from `origin`.
async fn roll_back_shout(s: &Server, http: &reqwest::Client, origin: &str) -> reqwest::Response {
    http.post(s.url("/ui/objects/aura/methods/shout/rollback"))
        .header("Origin", origin)
        .form(&[("version", "1")])
        .send()
        .await
        .unwrap()
}

async fn login(s: &Server, http: &reqwest::Client, token: &str) -> reqwest::Response {
    http.post(s.url("/ui/login"))
        .form(&[("token", token), ("next", "/ui/objects/aura")])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_login_whose_cookie_scripts_cannot_read() {
    let s = server().await;
    create(&s, "aura").await;
    let http = browserless();
    for page in [
        "/ui/objects",
        "/ui/objects/aura",
        "/ui/cycles",
        "/ui/memory?q=x",
        "/ui/health",
        "/ui/monologue",
        "/ui/events",
    ] {
        let r = http.get(s.url(page)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{page}");
        let to = r.headers()[LOCATION].to_str().unwrap();
        assert!(to.starts_with("/ui/login?next="), "{page} → {to}");
    }
    // A bearer token is for the API; the pages want their cookie.
    let r = http
        .get(s.url("/ui/objects"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let wrong = login(&s, &http, "not-the-token").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    assert!(wrong.text().await.unwrap().contains("That token is wrong"));

    let ok = login(&s, &http, TOKEN).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()[LOCATION], "/ui/objects/aura");
    let cookie = ok.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains(TOKEN),
        "the token is encoded, not pasted: {cookie}"
    );

    let page = http.get(s.url("/ui/objects/aura")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(page.text().await.unwrap().contains("Object aura"));

    // Logging in never sends anyone to another site.
    let r = http
        .post(s.url("/ui/login"))
        .form(&[("token", TOKEN), ("next", "//evil.example/x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[LOCATION], "/ui/objects");
    // Nor logs anyone in from a form on another site.
    let r = browserless()
        .post(s.url("/ui/login"))
        .header("Origin", "http://evil.example")
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get(SET_COOKIE).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_and_user_text_is_escaped_and_rollback_needs_teach_and_this_origin() {
    let s = server_with(
        GatewayConfig::default()
            .token(TOKEN)
            .scoped_token(Scope::Read, "reader-token"),
    )
    .await;
    create(&s, "aura").await;
    define(&s, "aura", "shout", HOSTILE).await;
    define(&s, "aura", "shout", "def shout(self):\n    return 'calm'\n").await;

    let reader = browserless();
    login(&s, &reader, "reader-token").await;
    let page = reader
        .get(s.url("/ui/objects/aura/methods/shout?v=1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("&lt;script&gt;window.pwned = 1&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>window"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(
        page.contains("&lt;b&gt;bold&lt;/b&gt;"),
        "the doc is escaped too"
    );
    assert!(
        !page.contains("roll back to this"),
        "a reader is not offered the write"
    );
    let r = reader
        .post(s.url("/ui/objects/aura/methods/shout/rollback"))
        .form(&[("version", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let admin = browserless();
    login(&s, &admin, TOKEN).await;
    // A form posted from another site is refused, whatever its cookie.
    let r = roll_back_shout(&s, &admin, "http://evil.example").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let versions = shout_versions(&s).await;
    assert_eq!(
        versions["current"], 2,
        "nothing was rolled back: {versions}"
    );

    let r = roll_back_shout(&s, &admin, &s.base).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let versions = shout_versions(&s).await;
    assert_eq!(versions["current"], 3, "{versions}");
    assert_eq!(
        versions["versions"][2]["provenance"]["kind"], "rollback",
        "{versions}"
    );
    assert_eq!(
        versions["versions"][2]["provenance"]["from_version"], 1,
        "{versions}"
    );

    // A page that does not exist, or a version that does not, is an error page.
    let r = admin.get(s.url("/ui/objects/nobody")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = admin
        .get(s.url("/ui/objects/aura/methods/shout?v=9"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = admin
        .get(s.url("/ui/cycles/not-an-id"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = admin.get(s.url("/ui/no/such/page")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("There is no page /ui/no/such/page"));
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver() -> Option<Driver> {
    if std::env::var("AURA_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        println!("skipped: browser (AURA_SKIP_BROWSER=1)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start chromedriver ({e}): run scripts/setup.sh test (Debian's chromium \
                 and chromium-driver), or set AURA_SKIP_BROWSER=1 to skip the browser tests"
            )
        });
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1100"] }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a headless Chromium session")
}

fn screenshots() -> PathBuf {
    let dir = std::env::var_os("AURA_UI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shoot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    let path = screenshots().join(name);
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
}

async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Clicks the first element `css` matches.
async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits until `css` matches something, for up to 10 s.
async fn wait_for(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(e) => e,
        Err(e) => {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let source = c.source().await.unwrap_or_default();
            panic!("{css} never appeared ({e}) at {url}:\n{source}")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspector_in_a_real_browser() {
    let Some(driver) = start_driver() else {
        return;
    };
    let s = server().await;
    create(&s, "aura").await;
    // A committed learn cycle and one the guard refused, from the scripted model.
    let taught = s
        .tell("aura", "teach yourself to calculate the fibonacci sequence")
        .await;
    assert_eq!(taught["refused"], false, "{taught}");
    let refused = s
        .tell(
            "aura",
            "teach yourself to list the files in the current directory using the os module",
        )
        .await;
    assert_eq!(refused["refused"], true, "{refused}");
    define(&s, "aura", "shout", HOSTILE).await;
    define(&s, "aura", "shout", "def shout(self):\n    return 'calm'\n").await;

    let c = browser(&driver).await;
    let result = async {
        // Unauthenticated: to the login, then back where we were going.
        c.goto(&s.url("/ui/objects/aura")).await.unwrap();
        assert!(c.current_url().await.unwrap().path().ends_with("/ui/login"));
        c.find(Locator::Css("#token"))
            .await
            .unwrap()
            .send_keys(TOKEN)
            .await
            .unwrap();
        click(&c, "form button[type=submit]").await;
        wait_for(&c, "#methods").await;
        assert_eq!(c.current_url().await.unwrap().path(), "/ui/objects/aura");
        assert!(text_of(&c, "#methods").await.contains("fibonacci"));
        shoot(&c, "object.png").await;

        // The committed cycle: candidates, the winner, the waterfall.
        c.goto(&s.url("/ui/cycles")).await.unwrap();
        let rows = c
            .find_all(Locator::Css("table.cycles tbody tr"))
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "one committed, one refused");
        click(&c, "table.cycles tbody tr:nth-child(1) a").await;
        wait_for(&c, "#candidates").await;
        assert_eq!(text_of(&c, "#outcome").await, "committed");
        assert!(text_of(&c, "#candidates tr.winner")
            .await
            .contains("passed"));
        wait_for(&c, "#waterfall svg rect.seg").await;
        assert!(!text_of(&c, "#reason").await.is_empty());
        shoot(&c, "learn-cycle.png").await;

        // The refused one: the guard's rule id on its candidate.
        c.back().await.unwrap();
        click(&c, "table.cycles tbody tr:nth-child(2) a").await;
        wait_for(&c, "#candidates").await;
        assert_eq!(text_of(&c, "#outcome").await, "refused");
        let rules = c
            .find_all(Locator::Css("#candidates code.rule"))
            .await
            .unwrap();
        let mut ids = Vec::new();
        for r in rules {
            ids.push(r.text().await.unwrap());
        }
        assert!(ids.iter().any(|id| id.contains("import")), "{ids:?}");
        shoot(&c, "learn-cycle-refused.png").await;

        // Hostile source is text: no element made from it, no script run.
        c.goto(&s.url("/ui/objects/aura/methods/shout?v=1"))
            .await
            .unwrap();
        let source = text_of(&c, "#source").await;
        assert!(
            source.contains("<script>window.pwned = 1</script>"),
            "{source}"
        );
        assert!(source.contains("<img src=x onerror="), "{source}");
        assert!(c
            .find_all(Locator::Css("main img"))
            .await
            .unwrap()
            .is_empty());
        assert!(c
            .find_all(Locator::Css("main script"))
            .await
            .unwrap()
            .is_empty());
        let pwned = c
            .execute("return typeof window.pwned;", vec![])
            .await
            .unwrap();
        assert_eq!(pwned, json!("undefined"));

        // Roll back, confirmed on its own page, and see the version change.
        c.goto(&s.url("/ui/objects/aura/methods/shout"))
            .await
            .unwrap();
        assert_eq!(text_of(&c, "#current-version").await, "2");
        click(&c, "#versions a.button").await;
        wait_for(&c, "#confirm").await.click().await.unwrap();
        wait_for(&c, "#rolled").await;
        assert_eq!(text_of(&c, "#current-version").await, "3");
        assert!(text_of(&c, "#source").await.contains("<script>"));

        // The monologue, live: a line arrives while the page is open.
        c.goto(&s.url("/ui/monologue")).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !text_of(&c, "#status").await.starts_with("Connected") {
            assert!(Instant::now() < deadline, "the event stream never opened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s.tell("aura", "calculate fibonacci for 7").await;
        let line = wait_for(&c, "#monologue tbody tr.line").await;
        assert!(!line.text().await.unwrap().is_empty());
    }
    .await;
    c.close().await.unwrap();
    result
}

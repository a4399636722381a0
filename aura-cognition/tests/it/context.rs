//! The context ingestor and its providers against a local HTTP server serving recorded
//! payloads (successes, 401/500, malformed JSON, timeouts) and real RSS/Atom files.
#![cfg(feature = "context-http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aura_cognition::context::{
    ApiNinjasNewsProvider, ConfiguredPlaceProvider, FeedProvider, Ip2LocationProvider,
    NewsApiProvider, ProviderState, SystemClockProvider,
};
use aura_cognition::{
    ContextIngestor, ContextIngestorBuilder, ContextKind, ContextProvider, ContextReading, Error,
};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(name: &str) -> String {
    let p = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/fixtures/context")
    .join(name);
    std::fs::read_to_string(p).unwrap()
}

fn fixture_path(name: &str) -> String {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/fixtures/context")
    .join(name)
    .display()
    .to_string()
}

fn json(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.to_string(), "application/json")
}

async fn place(p: &dyn ContextProvider) -> aura_cognition::Result<aura_cognition::context::Place> {
    match p.fetch().await? {
        ContextReading::Place(place) => Ok(place),
        other => panic!("expected a place, got {other:?}"),
    }
}

async fn headlines(
    p: &dyn ContextProvider,
) -> aura_cognition::Result<Vec<aura_cognition::context::Headline>> {
    match p.fetch().await? {
        ContextReading::News { headlines } => Ok(headlines),
        other => panic!("expected news, got {other:?}"),
    }
}

#[tokio::test]
async fn ip2location_reads_the_documented_response() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/"))
        .and(query_param("key", "k-123"))
        .and(query_param("format", "json"))
        .respond_with(json(&fixture("ip2location.json")))
        .mount(&server)
        .await;
    let p = Ip2LocationProvider::new("k-123").with_base_url(format!("{}/", server.uri()));
    let got = place(&p).await.unwrap();
    assert_eq!(
        got.name,
        "Mountain View, California, United States of America"
    );
    assert_eq!(got.country_code.as_deref(), Some("US"));
    assert_eq!(got.latitude, Some(37.38605));
    assert_eq!(got.timezone.as_deref(), Some("-08:00"));
}

#[tokio::test]
async fn ip2location_errors_are_reported() {
    let server = MockServer::start().await;
    Mock::given(query_param("key", "bad"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_raw(fixture("ip2location_error.json"), "application/json"),
        )
        .mount(&server)
        .await;
    Mock::given(query_param("key", "broken"))
        .respond_with(json("{\"city_name\": \"Mountain"))
        .mount(&server)
        .await;
    Mock::given(query_param("key", "down"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let base = format!("{}/", server.uri());

    let err = place(&Ip2LocationProvider::new("bad").with_base_url(&base))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("401") && msg.contains("Invalid API key"),
        "{msg}"
    );

    let err = place(&Ip2LocationProvider::new("broken").with_base_url(&base))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("malformed JSON"), "{err}");

    let err = place(&Ip2LocationProvider::new("down").with_base_url(&base))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
}

#[tokio::test]
async fn newsapi_top_headlines_and_its_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/top-headlines"))
        .and(header("X-Api-Key", "good"))
        .and(query_param("country", "de"))
        .respond_with(json(&fixture("newsapi_top_headlines.json")))
        .mount(&server)
        .await;
    Mock::given(path("/v2/top-headlines"))
        .and(header("X-Api-Key", "bad"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_raw(fixture("newsapi_error.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let base = format!("{}/v2", server.uri());

    let p = NewsApiProvider::new("good")
        .with_base_url(&base)
        .with_country("DE");
    let got = headlines(&p).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].title,
        "Bay Area transit strike ends after overnight deal"
    );
    assert_eq!(got[0].source.as_deref(), Some("Associated Press"));
    assert_eq!(
        got[0].published.unwrap().to_rfc3339(),
        "2026-11-27T07:15:00+00:00"
    );
    assert_eq!(got[1].source.as_deref(), Some("Mountain View Voice"));

    let err = headlines(&NewsApiProvider::new("bad").with_base_url(&base))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("API key is invalid"), "{err}");
}

#[tokio::test]
async fn api_ninjas_accepts_a_list_of_articles() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/news"))
        .and(header("X-Api-Key", "ninja"))
        .respond_with(json(
            r#"[{"title": "Harbour bridge reopens", "url": "https://n.example/a", "source": "Harbour Post", "date": "2026-11-27T06:00:00Z"}]"#,
        ))
        .mount(&server)
        .await;
    let p = ApiNinjasNewsProvider::new("ninja").with_url(format!("{}/v1/news", server.uri()));
    let got = headlines(&p).await.unwrap();
    assert_eq!(got[0].title, "Harbour bridge reopens");
    assert_eq!(got[0].source.as_deref(), Some("Harbour Post"));
}

#[tokio::test]
async fn rss_and_atom_feeds_over_http_and_from_files() {
    let server = MockServer::start().await;
    Mock::given(path("/rss.xml"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(fixture("news.rss"), "application/rss+xml"),
        )
        .mount(&server)
        .await;
    let rss = headlines(&FeedProvider::new(format!("{}/rss.xml", server.uri())))
        .await
        .unwrap();
    assert_eq!(rss.len(), 3);
    assert_eq!(
        rss[0].title,
        "City council approves new riverside cycle path"
    );
    assert_eq!(rss[0].source.as_deref(), Some("Riverside Gazette"));
    assert_eq!(
        rss[0].url.as_deref(),
        Some("https://gazette.example.org/2026/11/27/cycle-path")
    );
    assert_eq!(rss[2].title, "Storm warning lifted for the valley & hills");
    assert!(rss[0].published.is_some());

    let atom = headlines(&FeedProvider::new(format!(
        "file://{}",
        fixture_path("news.atom")
    )))
    .await
    .unwrap();
    assert_eq!(atom.len(), 2);
    assert_eq!(
        atom[0].title,
        "Open-source model runs on a single laptop core"
    );
    assert_eq!(atom[0].source.as_deref(), Some("Valley Tech Weekly"));
    assert_eq!(
        atom[0].published.unwrap().to_rfc3339(),
        "2026-11-27T09:40:00+00:00"
    );
    // no <published>: the update time stands in
    assert!(atom[1].published.is_some());

    let plain_path = headlines(&FeedProvider::new(fixture_path("news.rss")).with_max_items(1))
        .await
        .unwrap();
    assert_eq!(plain_path.len(), 1);

    let err = headlines(&FeedProvider::new(fixture_path("ip2location.json")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not an RSS/Atom feed"), "{err}");
}

#[tokio::test]
async fn the_ingestor_falls_back_and_reports_failures() {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    Mock::given(path("/v2/top-headlines"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("newsapi_top_headlines.json"), "application/json")
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let vars: HashMap<&str, String> = HashMap::from([
        ("IP2LOCATION_KEY", "k".to_string()),
        ("AURA_IP2LOCATION_URL", format!("{}/", server.uri())),
        ("AURA_LOCATION", "Riverside, US".to_string()),
        ("NEWSAPI_KEY", "k".to_string()),
        ("AURA_NEWSAPI_URL", format!("{}/v2", server.uri())),
        (
            "AURA_NEWS_FEED_URL",
            format!("file://{}", fixture_path("news.rss")),
        ),
        ("AURA_CONTEXT_TIMEOUT_MS", "300".to_string()),
        ("AURA_TIMEZONE", "Europe/Berlin".to_string()),
    ]);
    let ingestor = ContextIngestorBuilder::from_vars(|k| vars.get(k).cloned()).build();
    let names: Vec<&str> = ingestor.providers().iter().map(|p| p.name()).collect();
    assert_eq!(
        names,
        [
            "clock",
            "ip2location",
            "configured-place",
            "newsapi",
            "feed"
        ]
    );

    let started = std::time::Instant::now();
    let f = ingestor.assemble().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "timeouts bound the wait"
    );

    assert_eq!(f.time.as_ref().unwrap().timezone, "Europe/Berlin");
    assert_eq!(f.place.as_ref().unwrap().name, "Riverside, US");
    assert_eq!(
        f.place.as_ref().unwrap().country_code.as_deref(),
        Some("US")
    );
    assert_eq!(
        f.headlines[0].title,
        "City council approves new riverside cycle path"
    );

    let state = |name: &str| {
        f.statuses
            .iter()
            .find(|s| s.provider == name)
            .unwrap()
            .state
            .clone()
    };
    assert_eq!(state("clock"), ProviderState::Fresh);
    assert!(
        matches!(state("ip2location"), ProviderState::Failed { reason } if reason.contains("500"))
    );
    assert_eq!(state("configured-place"), ProviderState::Fresh);
    assert!(
        matches!(state("newsapi"), ProviderState::Failed { reason } if reason.contains("timed out"))
    );
    assert_eq!(state("feed"), ProviderState::Fresh);
    assert_eq!(f.failures().count(), 2);

    let prompt = f.to_prompt(2);
    assert!(prompt.contains("Place: Riverside, US"), "{prompt}");
    assert!(prompt.contains(
        "News: City council approves new riverside cycle path | Library opens weekend maths club"
    ));
    // the fractal serialises (it is recorded in the packet)
    let json = serde_json::to_value(&f).unwrap();
    assert_eq!(json["statuses"][1]["state"], "failed");
}

#[tokio::test]
async fn with_nothing_configured_only_the_clock_answers() {
    let ingestor = ContextIngestorBuilder::from_vars(|_| None).build();
    let f = ingestor.assemble().await;
    assert!(f.time.is_some());
    assert!(f.place.is_none());
    assert!(f.headlines.is_empty());
    assert_eq!(f.statuses.len(), 1);
    assert!(!f.time.unwrap().timezone.is_empty());
}

/// Counts its fetches.
#[derive(Debug, Default)]
struct Counting(AtomicUsize);

#[async_trait]
impl ContextProvider for Counting {
    fn name(&self) -> &str {
        "counting"
    }
    fn kind(&self) -> ContextKind {
        ContextKind::News
    }
    async fn fetch(&self) -> aura_cognition::Result<ContextReading> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(ContextReading::News { headlines: vec![] })
    }
}

/// Fails, then never answers.
#[derive(Debug)]
struct Flaky;

#[async_trait]
impl ContextProvider for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    fn kind(&self) -> ContextKind {
        ContextKind::Place
    }
    async fn fetch(&self) -> aura_cognition::Result<ContextReading> {
        Err(Error::Unavailable("no route".into()))
    }
}

#[tokio::test]
async fn readings_are_cached_for_the_ttl_and_failures_are_not() {
    let counting = Arc::new(Counting::default());
    let ingestor = ContextIngestor::builder()
        .provider(counting.clone())
        .provider(Arc::new(Flaky))
        .provider(Arc::new(ConfiguredPlaceProvider::new("Riverside")))
        .ttl(Duration::from_secs(60))
        .build();
    let first = ingestor.assemble().await;
    let second = ingestor.assemble().await;
    assert_eq!(counting.0.load(Ordering::SeqCst), 1);
    assert_eq!(first.statuses[0].state, ProviderState::Fresh);
    assert_eq!(second.statuses[0].state, ProviderState::Cached);
    assert!(matches!(
        second.statuses[1].state,
        ProviderState::Failed { .. }
    ));
    assert_eq!(second.place.unwrap().name, "Riverside");

    ingestor.clear_cache();
    ingestor.assemble().await;
    assert_eq!(counting.0.load(Ordering::SeqCst), 2);

    let expiring = ContextIngestor::builder()
        .provider(counting.clone())
        .ttl(Duration::ZERO)
        .build();
    expiring.assemble().await;
    expiring.assemble().await;
    assert_eq!(counting.0.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn the_clock_is_never_cached() {
    let ingestor = ContextIngestor::builder()
        .provider(Arc::new(SystemClockProvider::new(None)))
        .ttl(Duration::from_secs(600))
        .build();
    let first = ingestor.assemble().await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = ingestor.assemble().await;
    assert_eq!(second.statuses[0].state, ProviderState::Fresh);
    assert!(second.time.unwrap().utc > first.time.unwrap().utc);
}

#[tokio::test]
async fn an_earlier_success_skips_later_providers_of_the_kind() {
    let ingestor = ContextIngestor::builder()
        .provider(Arc::new(SystemClockProvider::new(None)))
        .provider(Arc::new(ConfiguredPlaceProvider::new("Paris, FR")))
        .provider(Arc::new(ConfiguredPlaceProvider::new("Rome, IT")))
        .build();
    let f = ingestor.assemble().await;
    assert_eq!(f.place.unwrap().name, "Paris, FR");
    assert_eq!(f.statuses[2].state, ProviderState::Skipped);
}

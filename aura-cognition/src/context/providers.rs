//! The built-in context providers.

use async_trait::async_trait;
use chrono::Utc;

use super::{ContextKind, ContextProvider, ContextReading, Headline, Place, TimeReading};
use crate::{Error, Result};

/// The system clock and time zone (always available).
#[derive(Clone, Debug, Default)]
pub struct SystemClockProvider {
    timezone: Option<String>,
}

impl SystemClockProvider {
    /// A clock reporting `timezone` as the zone name, or the system's when `None`.
    pub fn new(timezone: Option<String>) -> Self {
        Self { timezone }
    }
}

#[async_trait]
impl ContextProvider for SystemClockProvider {
    fn name(&self) -> &str {
        "clock"
    }
    fn kind(&self) -> ContextKind {
        ContextKind::Time
    }
    async fn fetch(&self) -> Result<ContextReading> {
        let local = chrono::Local::now();
        let offset = local.offset().local_minus_utc();
        let timezone = self
            .timezone
            .clone()
            .or_else(|| iana_time_zone::get_timezone().ok())
            .unwrap_or_else(|| local.format("UTC%:z").to_string());
        Ok(ContextReading::Time(TimeReading {
            utc: local.with_timezone(&Utc),
            local: local.format("%Y-%m-%d %H:%M %:z").to_string(),
            timezone,
            utc_offset_seconds: offset,
        }))
    }
}

/// A place the user configured (`AURA_LOCATION`, e.g. "Berlin, DE").
#[derive(Clone, Debug)]
pub struct ConfiguredPlaceProvider {
    place: String,
}

impl ConfiguredPlaceProvider {
    /// A provider that always answers `place`.
    pub fn new(place: impl Into<String>) -> Self {
        Self {
            place: place.into(),
        }
    }
}

#[async_trait]
impl ContextProvider for ConfiguredPlaceProvider {
    fn name(&self) -> &str {
        "configured-place"
    }
    fn kind(&self) -> ContextKind {
        ContextKind::Place
    }
    async fn fetch(&self) -> Result<ContextReading> {
        let parts: Vec<&str> = self
            .place
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        let Some(first) = parts.first() else {
            return Err(Error::Invalid("AURA_LOCATION is empty".into()));
        };
        let last = parts.last().filter(|_| parts.len() > 1);
        Ok(ContextReading::Place(Place {
            name: parts.join(", "),
            city: Some((*first).to_string()),
            country: last.map(|c| c.to_string()),
            country_code: last
                .filter(|c| c.len() == 2 && c.chars().all(|ch| ch.is_ascii_alphabetic()))
                .map(|c| c.to_ascii_uppercase()),
            ..Place::default()
        }))
    }
}

/// Parses an RSS 2.0 / RSS 1.0 / Atom document into headlines (at most `max`).
pub(crate) fn parse_feed(bytes: &[u8], max: usize) -> Result<Vec<Headline>> {
    let feed = feed_rs::parser::parse(bytes)
        .map_err(|e| Error::backend("feed", format!("not an RSS/Atom feed: {e}")))?;
    let publisher = feed.title.as_ref().map(|t| t.content.trim().to_string());
    Ok(feed
        .entries
        .into_iter()
        .filter_map(|e| {
            let title = e.title.map(|t| t.content.trim().to_string())?;
            if title.is_empty() {
                return None;
            }
            Some(Headline {
                title,
                source: publisher.clone(),
                url: e.links.first().map(|l| l.href.clone()),
                published: e.published.or(e.updated),
            })
        })
        .take(max)
        .collect())
}

/// Any RSS or Atom feed: `http(s)://` (feature `context-http`), `file://` or a path.
#[derive(Clone, Debug)]
pub struct FeedProvider {
    url: String,
    max_items: usize,
    #[cfg(feature = "context-http")]
    client: reqwest::Client,
}

impl FeedProvider {
    /// A provider reading the feed at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_items: 5,
            #[cfg(feature = "context-http")]
            client: http_client(super::DEFAULT_TIMEOUT),
        }
    }

    /// Uses this HTTP client.
    #[cfg(feature = "context-http")]
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client = client;
        self
    }

    /// Keeps at most `max` headlines (default 5).
    pub fn with_max_items(mut self, max: usize) -> Self {
        self.max_items = max;
        self
    }

    async fn bytes(&self) -> Result<Vec<u8>> {
        let url = self.url.trim();
        if url.starts_with("http://") || url.starts_with("https://") {
            #[cfg(feature = "context-http")]
            {
                let resp = self
                    .client
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| send_error("feed", &e))?;
                let status = resp.status();
                if !status.is_success() {
                    return Err(Error::backend("feed", format!("HTTP {status}")));
                }
                let body = resp.bytes().await.map_err(|e| send_error("feed", &e))?;
                return Ok(body.to_vec());
            }
            #[cfg(not(feature = "context-http"))]
            return Err(Error::Unsupported(
                "http feeds need the `context-http` feature".into(),
            ));
        }
        let path = url.strip_prefix("file://").unwrap_or(url);
        tokio::fs::read(path)
            .await
            .map_err(|e| Error::Unavailable(format!("feed {path}: {e}")))
    }
}

#[async_trait]
impl ContextProvider for FeedProvider {
    fn name(&self) -> &str {
        "feed"
    }
    fn kind(&self) -> ContextKind {
        ContextKind::News
    }
    async fn fetch(&self) -> Result<ContextReading> {
        let bytes = self.bytes().await?;
        let headlines = parse_feed(&bytes, self.max_items)?;
        Ok(ContextReading::News { headlines })
    }
}

#[cfg(feature = "context-http")]
pub(crate) use http::{http_client, send_error};
#[cfg(feature = "context-http")]
pub use http::{ApiNinjasNewsProvider, Ip2LocationProvider, NewsApiProvider};

#[cfg(feature = "context-http")]
mod http {
    use std::time::Duration;

    use async_trait::async_trait;
    use serde_json::Value;

    use super::{ContextKind, ContextProvider, ContextReading, Headline, Place};
    use crate::{Error, Result};

    /// A reqwest client with `timeout` (rustls).
    pub(crate) fn http_client(timeout: Duration) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("aura/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default()
    }

    pub(crate) fn send_error(provider: &'static str, e: &reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::Unavailable(format!("{provider}: request timed out"))
        } else {
            Error::Unavailable(format!("{provider}: {e}"))
        }
    }

    /// The error message inside a JSON error body, in the shapes the providers use.
    fn error_message(body: &Value) -> Option<String> {
        let e = body.get("error");
        e.and_then(|e| e.get("error_message"))
            .or_else(|| body.get("message"))
            .or_else(|| e.filter(|e| e.is_string()))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    async fn get_json(provider: &'static str, request: reqwest::RequestBuilder) -> Result<Value> {
        let resp = request.send().await.map_err(|e| send_error(provider, &e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| send_error(provider, &e))?;
        let json = serde_json::from_slice::<Value>(&body);
        if !status.is_success() {
            let detail = json
                .as_ref()
                .ok()
                .and_then(error_message)
                .unwrap_or_default();
            return Err(Error::backend(
                provider,
                format!("HTTP {status} {detail}").trim().to_string(),
            ));
        }
        json.map_err(|e| Error::backend(provider, format!("malformed JSON: {e}")))
    }

    fn text(v: &Value, keys: &[&str]) -> Option<String> {
        keys.iter()
            .filter_map(|k| v.get(*k))
            .filter_map(Value::as_str)
            .map(str::trim)
            .find(|s| !s.is_empty() && *s != "-")
            .map(str::to_string)
    }

    fn date(v: &Value, keys: &[&str]) -> Option<chrono::DateTime<chrono::Utc>> {
        text(v, keys).and_then(|s| {
            chrono::DateTime::parse_from_rfc3339(&s)
                .or_else(|_| chrono::DateTime::parse_from_rfc2822(&s))
                .ok()
                .map(|d| d.with_timezone(&chrono::Utc))
        })
    }

    /// The place of the caller's public IP, from ip2location.io
    /// (`GET {base}?key=…&format=json`).
    #[derive(Clone, Debug)]
    pub struct Ip2LocationProvider {
        key: String,
        base_url: String,
        client: reqwest::Client,
    }

    impl Ip2LocationProvider {
        /// A provider using `key` against `https://api.ip2location.io/`.
        pub fn new(key: impl Into<String>) -> Self {
            Self {
                key: key.into(),
                base_url: "https://api.ip2location.io/".into(),
                client: http_client(crate::context::DEFAULT_TIMEOUT),
            }
        }
        /// Points it elsewhere (tests, proxies).
        pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
            self.base_url = url.into();
            self
        }
        /// Uses this HTTP client.
        pub fn with_client(mut self, client: reqwest::Client) -> Self {
            self.client = client;
            self
        }
    }

    #[async_trait]
    impl ContextProvider for Ip2LocationProvider {
        fn name(&self) -> &str {
            "ip2location"
        }
        fn kind(&self) -> ContextKind {
            ContextKind::Place
        }
        async fn fetch(&self) -> Result<ContextReading> {
            let body = get_json(
                "ip2location",
                self.client
                    .get(&self.base_url)
                    .query(&[("key", self.key.as_str()), ("format", "json")]),
            )
            .await?;
            if body.get("error").is_some() {
                return Err(Error::backend(
                    "ip2location",
                    error_message(&body).unwrap_or_else(|| "error".into()),
                ));
            }
            let city = text(&body, &["city_name"]);
            let region = text(&body, &["region_name"]);
            let country = text(&body, &["country_name"]);
            let name = [&city, &region, &country]
                .into_iter()
                .flatten()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if name.is_empty() {
                return Err(Error::backend(
                    "ip2location",
                    "the response names no city, region or country",
                ));
            }
            Ok(ContextReading::Place(Place {
                name,
                city,
                region,
                country,
                country_code: text(&body, &["country_code"]),
                latitude: body.get("latitude").and_then(Value::as_f64),
                longitude: body.get("longitude").and_then(Value::as_f64),
                timezone: text(&body, &["time_zone"]),
            }))
        }
    }

    /// NewsAPI `top-headlines` (`GET {base}/top-headlines?country=…`, key in `X-Api-Key`).
    #[derive(Clone, Debug)]
    pub struct NewsApiProvider {
        key: String,
        base_url: String,
        country: String,
        page_size: usize,
        client: reqwest::Client,
    }

    impl NewsApiProvider {
        /// A provider using `key` against `https://newsapi.org/v2`, country `us`.
        pub fn new(key: impl Into<String>) -> Self {
            Self {
                key: key.into(),
                base_url: "https://newsapi.org/v2".into(),
                country: "us".into(),
                page_size: 5,
                client: http_client(crate::context::DEFAULT_TIMEOUT),
            }
        }
        /// Points it elsewhere (tests, proxies).
        pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
            self.base_url = url.into();
            self
        }
        /// Sets the ISO 3166-1 country code.
        pub fn with_country(mut self, country: impl Into<String>) -> Self {
            self.country = country.into().to_lowercase();
            self
        }
        /// Uses this HTTP client.
        pub fn with_client(mut self, client: reqwest::Client) -> Self {
            self.client = client;
            self
        }
    }

    #[async_trait]
    impl ContextProvider for NewsApiProvider {
        fn name(&self) -> &str {
            "newsapi"
        }
        fn kind(&self) -> ContextKind {
            ContextKind::News
        }
        async fn fetch(&self) -> Result<ContextReading> {
            let url = format!("{}/top-headlines", self.base_url.trim_end_matches('/'));
            let body = get_json(
                "newsapi",
                self.client.get(url).header("X-Api-Key", &self.key).query(&[
                    ("country", self.country.clone()),
                    ("pageSize", self.page_size.to_string()),
                ]),
            )
            .await?;
            if body.get("status").and_then(Value::as_str) != Some("ok") {
                return Err(Error::backend(
                    "newsapi",
                    error_message(&body).unwrap_or_else(|| "status is not ok".into()),
                ));
            }
            let articles = body
                .get("articles")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::backend("newsapi", "no articles array"))?;
            let headlines = articles
                .iter()
                .filter_map(|a| {
                    Some(Headline {
                        title: text(a, &["title"])?,
                        source: a.get("source").and_then(|s| text(s, &["name"])),
                        url: text(a, &["url"]),
                        published: date(a, &["publishedAt"]),
                    })
                })
                .take(self.page_size)
                .collect();
            Ok(ContextReading::News { headlines })
        }
    }

    /// API Ninjas news (key in `X-Api-Key`). The endpoint is configurable; the reply may
    /// be an array of articles or an object holding one under `articles`/`data`/`results`,
    /// each with `title`/`headline`, `url`/`link`, `source`/`publisher`, a date.
    #[derive(Clone, Debug)]
    pub struct ApiNinjasNewsProvider {
        key: String,
        url: String,
        client: reqwest::Client,
    }

    impl ApiNinjasNewsProvider {
        /// A provider using `key` against `https://api.api-ninjas.com/v1/news`.
        pub fn new(key: impl Into<String>) -> Self {
            Self {
                key: key.into(),
                url: "https://api.api-ninjas.com/v1/news".into(),
                client: http_client(crate::context::DEFAULT_TIMEOUT),
            }
        }
        /// Sets the endpoint.
        pub fn with_url(mut self, url: impl Into<String>) -> Self {
            self.url = url.into();
            self
        }
        /// Uses this HTTP client.
        pub fn with_client(mut self, client: reqwest::Client) -> Self {
            self.client = client;
            self
        }
    }

    #[async_trait]
    impl ContextProvider for ApiNinjasNewsProvider {
        fn name(&self) -> &str {
            "api-ninjas"
        }
        fn kind(&self) -> ContextKind {
            ContextKind::News
        }
        async fn fetch(&self) -> Result<ContextReading> {
            let body = get_json(
                "api-ninjas",
                self.client.get(&self.url).header("X-Api-Key", &self.key),
            )
            .await?;
            let items = body
                .as_array()
                .or_else(|| {
                    ["articles", "data", "results"]
                        .iter()
                        .find_map(|k| body.get(*k).and_then(Value::as_array))
                })
                .ok_or_else(|| {
                    Error::backend(
                        "api-ninjas",
                        error_message(&body)
                            .unwrap_or_else(|| "the reply holds no list of articles".into()),
                    )
                })?;
            let headlines = items
                .iter()
                .filter_map(|a| {
                    Some(Headline {
                        title: text(a, &["title", "headline"])?,
                        source: text(a, &["source", "publisher"])
                            .or_else(|| a.get("source").and_then(|s| text(s, &["name"]))),
                        url: text(a, &["url", "link"]),
                        published: date(a, &["date", "published", "published_at", "publishedAt"]),
                    })
                })
                .take(5)
                .collect();
            Ok(ContextReading::News { headlines })
        }
    }
}

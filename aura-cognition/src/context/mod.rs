//! The spatiotemporal anchor: time, place and headlines for the cascade's first prompt.
//!
//! A [`ContextIngestor`] asks its [`ContextProvider`]s for readings and assembles a
//! [`RealTimeContextFractal`]. Providers of one kind (time, place, news) form a
//! fallback chain in the order they were added: the first that answers wins and the
//! rest are marked `skipped`. Kinds are fetched concurrently. Each fetch is bounded by
//! a timeout (default 2 s); successful readings (except the clock's) are cached for a
//! TTL (default 10 min).
//! A provider that fails is reported in the fractal's statuses and never fails the
//! cycle.
//!
//! [`ContextIngestorBuilder::from_env`] reads (unset or empty means "not configured"):
//!
//! | variable | meaning |
//! |---|---|
//! | `IP2LOCATION_KEY` | ip2location.io key: place from the caller's IP |
//! | `AURA_IP2LOCATION_URL` | its base URL (default `https://api.ip2location.io/`) |
//! | `AURA_LOCATION` | a configured place ("Berlin, DE"), the fallback for place |
//! | `NEWSAPI_KEY` | NewsAPI key: `top-headlines` |
//! | `AURA_NEWSAPI_URL` | its base URL (default `https://newsapi.org/v2`) |
//! | `AURA_NEWS_COUNTRY` | NewsAPI country code (default `us`) |
//! | `API_NINJAS_KEY` | API Ninjas key (sent as `X-Api-Key`) |
//! | `AURA_API_NINJAS_URL` | its news endpoint (default `https://api.api-ninjas.com/v1/news`) |
//! | `AURA_NEWS_FEED_URL` | an RSS/Atom feed: `http(s)://…`, `file://…` or a path |
//! | `AURA_TIMEZONE` | the time zone name to report (default: the system's) |
//! | `AURA_CONTEXT_TIMEOUT_MS` | per-provider timeout (default 2000) |
//! | `AURA_CONTEXT_TTL_S` | cache TTL in seconds (default 600) |
//!
//! HTTP providers need the `context-http` feature (on by default); without it a feed
//! can still be read from a local file.

mod providers;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[cfg(feature = "context-http")]
pub use providers::{ApiNinjasNewsProvider, Ip2LocationProvider, NewsApiProvider};
pub use providers::{ConfiguredPlaceProvider, FeedProvider, SystemClockProvider};

use crate::Result;

/// What a provider tells about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextKind {
    /// The current time and time zone.
    Time,
    /// Where the system is.
    Place,
    /// Current headlines.
    News,
}

/// The current time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeReading {
    /// Now, in UTC.
    pub utc: DateTime<Utc>,
    /// Now, in local time (RFC 3339 with offset).
    pub local: String,
    /// The time zone's name ("Europe/Berlin"), or the offset when unknown.
    pub timezone: String,
    /// Offset from UTC in seconds.
    pub utc_offset_seconds: i32,
}

/// Where the system is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Place {
    /// A human-readable name ("Mountain View, California, United States").
    pub name: String,
    /// City, when known.
    pub city: Option<String>,
    /// Region, when known.
    pub region: Option<String>,
    /// Country name, when known.
    pub country: Option<String>,
    /// ISO 3166-1 alpha-2 code, when known.
    pub country_code: Option<String>,
    /// Latitude, when known.
    pub latitude: Option<f64>,
    /// Longitude, when known.
    pub longitude: Option<f64>,
    /// Time zone as the provider states it, when known.
    pub timezone: Option<String>,
}

/// One headline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    /// The title.
    pub title: String,
    /// The publisher, when known.
    pub source: Option<String>,
    /// The link, when known.
    pub url: Option<String>,
    /// When it was published, when known.
    pub published: Option<DateTime<Utc>>,
}

/// One provider's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContextReading {
    /// A time reading.
    Time(TimeReading),
    /// A place.
    Place(Place),
    /// Headlines, most important first.
    News {
        /// The headlines.
        headlines: Vec<Headline>,
    },
}

impl ContextReading {
    /// The kind of reading.
    pub fn kind(&self) -> ContextKind {
        match self {
            Self::Time(_) => ContextKind::Time,
            Self::Place(_) => ContextKind::Place,
            Self::News { .. } => ContextKind::News,
        }
    }
}

/// A source of real-time context.
#[async_trait]
pub trait ContextProvider: Send + Sync + fmt::Debug {
    /// A short stable name ("clock", "ip2location", "newsapi", "feed", …).
    fn name(&self) -> &str;
    /// What it tells about.
    fn kind(&self) -> ContextKind;
    /// Reads it now.
    async fn fetch(&self) -> Result<ContextReading>;
}

/// A context provider shared across tasks.
pub type DynContextProvider = Arc<dyn ContextProvider>;

/// How a provider fared in one assembly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ProviderState {
    /// It answered.
    Fresh,
    /// Its cached answer was used.
    Cached,
    /// It failed (error, bad payload or timeout).
    Failed {
        /// What went wrong.
        reason: String,
    },
    /// Not asked: an earlier provider of its kind answered.
    Skipped,
}

/// One provider's status in the fractal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderStatus {
    /// The provider's name.
    pub provider: String,
    /// Its kind.
    pub kind: ContextKind,
    /// How it fared.
    #[serde(flatten)]
    pub state: ProviderState,
    /// Wall time spent on it, in milliseconds.
    pub elapsed_ms: u64,
}

/// The assembled real-time context: time, place, headlines and provider statuses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RealTimeContextFractal {
    /// When it was assembled.
    pub assembled_at: DateTime<Utc>,
    /// The time, when a time provider answered.
    pub time: Option<TimeReading>,
    /// The place, when a place provider answered.
    pub place: Option<Place>,
    /// Headlines, when a news provider answered.
    pub headlines: Vec<Headline>,
    /// Every provider's status.
    pub statuses: Vec<ProviderStatus>,
}

impl RealTimeContextFractal {
    /// Providers that failed.
    pub fn failures(&self) -> impl Iterator<Item = &ProviderStatus> {
        self.statuses
            .iter()
            .filter(|s| matches!(s.state, ProviderState::Failed { .. }))
    }

    /// A short, concrete prompt section: one line each for time, place and news.
    pub fn to_prompt(&self, max_headlines: usize) -> String {
        let mut lines = Vec::new();
        if let Some(t) = &self.time {
            lines.push(format!("Now: {} ({})", t.local, t.timezone));
        }
        if let Some(p) = &self.place {
            lines.push(format!("Place: {}", p.name));
        }
        let news: Vec<&str> = self
            .headlines
            .iter()
            .take(max_headlines)
            .map(|h| h.title.as_str())
            .collect();
        if !news.is_empty() {
            lines.push(format!("News: {}", news.join(" | ")));
        }
        lines.join("\n")
    }
}

/// Assembles the [`RealTimeContextFractal`] from its providers.
#[derive(Debug)]
pub struct ContextIngestor {
    providers: Vec<DynContextProvider>,
    timeout: Duration,
    ttl: Duration,
    cache: Mutex<HashMap<usize, (Instant, ContextReading)>>,
}

/// Configures a [`ContextIngestor`].
#[derive(Debug)]
pub struct ContextIngestorBuilder {
    providers: Vec<DynContextProvider>,
    timeout: Duration,
    ttl: Duration,
}

/// The default per-provider timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// The default cache TTL.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

impl Default for ContextIngestorBuilder {
    fn default() -> Self {
        Self {
            providers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            ttl: DEFAULT_TTL,
        }
    }
}

impl ContextIngestorBuilder {
    /// Providers from the process environment (see the module docs).
    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// Providers from a variable lookup (see the module docs for the names).
    ///
    /// Order per kind: time — system clock; place — ip2location (key set), then
    /// `AURA_LOCATION`; news — NewsAPI (key set), API Ninjas (key set), then the feed.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| {
            var(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut b = Self::default();
        if let Some(ms) = get("AURA_CONTEXT_TIMEOUT_MS").and_then(|v| v.parse().ok()) {
            b.timeout = Duration::from_millis(ms);
        }
        if let Some(s) = get("AURA_CONTEXT_TTL_S").and_then(|v| v.parse().ok()) {
            b.ttl = Duration::from_secs(s);
        }
        b = b.provider(Arc::new(SystemClockProvider::new(get("AURA_TIMEZONE"))));
        #[cfg(feature = "context-http")]
        {
            let client = providers::http_client(b.timeout);
            if let Some(key) = get("IP2LOCATION_KEY") {
                let mut p = Ip2LocationProvider::new(key).with_client(client.clone());
                if let Some(url) = get("AURA_IP2LOCATION_URL") {
                    p = p.with_base_url(url);
                }
                b = b.provider(Arc::new(p));
            }
            if let Some(place) = get("AURA_LOCATION") {
                b = b.provider(Arc::new(ConfiguredPlaceProvider::new(place)));
            }
            if let Some(key) = get("NEWSAPI_KEY") {
                let mut p = NewsApiProvider::new(key).with_client(client.clone());
                if let Some(url) = get("AURA_NEWSAPI_URL") {
                    p = p.with_base_url(url);
                }
                if let Some(c) = get("AURA_NEWS_COUNTRY") {
                    p = p.with_country(c);
                }
                b = b.provider(Arc::new(p));
            }
            if let Some(key) = get("API_NINJAS_KEY") {
                let mut p = ApiNinjasNewsProvider::new(key).with_client(client.clone());
                if let Some(url) = get("AURA_API_NINJAS_URL") {
                    p = p.with_url(url);
                }
                b = b.provider(Arc::new(p));
            }
            if let Some(url) = get("AURA_NEWS_FEED_URL") {
                b = b.provider(Arc::new(FeedProvider::new(url).with_client(client)));
            }
        }
        #[cfg(not(feature = "context-http"))]
        {
            if let Some(place) = get("AURA_LOCATION") {
                b = b.provider(Arc::new(ConfiguredPlaceProvider::new(place)));
            }
            if let Some(url) = get("AURA_NEWS_FEED_URL") {
                b = b.provider(Arc::new(FeedProvider::new(url)));
            }
        }
        b
    }

    /// Adds a provider (after those of its kind already added).
    pub fn provider(mut self, provider: DynContextProvider) -> Self {
        self.providers.push(provider);
        self
    }

    /// Sets the per-provider timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how long a successful reading is reused.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The ingestor.
    pub fn build(self) -> ContextIngestor {
        ContextIngestor {
            providers: self.providers,
            timeout: self.timeout,
            ttl: self.ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl ContextIngestor {
    /// A builder with no providers.
    pub fn builder() -> ContextIngestorBuilder {
        ContextIngestorBuilder::default()
    }

    /// An ingestor with the providers the environment configures
    /// (see [`ContextIngestorBuilder::from_env`]).
    pub fn from_env() -> Self {
        ContextIngestorBuilder::from_env().build()
    }

    /// The providers, in order.
    pub fn providers(&self) -> &[DynContextProvider] {
        &self.providers
    }

    /// Forgets every cached reading.
    pub fn clear_cache(&self) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Asks the providers and assembles the fractal. Never fails.
    pub async fn assemble(&self) -> RealTimeContextFractal {
        let kinds = [ContextKind::Time, ContextKind::Place, ContextKind::News];
        let chains = kinds.map(|kind| self.chain(kind));
        let results = futures::future::join_all(chains).await;
        let mut fractal = RealTimeContextFractal {
            assembled_at: Utc::now(),
            time: None,
            place: None,
            headlines: Vec::new(),
            statuses: Vec::new(),
        };
        let mut statuses: Vec<(usize, ProviderStatus)> = Vec::new();
        for (reading, chain_statuses) in results {
            statuses.extend(chain_statuses);
            match reading {
                Some(ContextReading::Time(t)) => fractal.time = Some(t),
                Some(ContextReading::Place(p)) => fractal.place = Some(p),
                Some(ContextReading::News { headlines }) => fractal.headlines = headlines,
                None => {}
            }
        }
        statuses.sort_by_key(|(i, _)| *i);
        fractal.statuses = statuses.into_iter().map(|(_, s)| s).collect();
        for s in fractal.failures() {
            tracing::warn!(target: "ContextIngestor", provider = %s.provider, state = ?s.state, "context provider failed");
        }
        fractal
    }

    fn cached(&self, index: usize) -> Option<ContextReading> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(&index)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, r)| r.clone())
    }

    async fn chain(
        &self,
        kind: ContextKind,
    ) -> (Option<ContextReading>, Vec<(usize, ProviderStatus)>) {
        let mut statuses = Vec::new();
        let mut found: Option<ContextReading> = None;
        for (index, provider) in self.providers.iter().enumerate() {
            if provider.kind() != kind {
                continue;
            }
            let mut status = ProviderStatus {
                provider: provider.name().to_string(),
                kind,
                state: ProviderState::Skipped,
                elapsed_ms: 0,
            };
            if found.is_some() {
                statuses.push((index, status));
                continue;
            }
            // The clock is never cached: a stale time is worse than none.
            if let Some(reading) = self.cached(index).filter(|_| kind != ContextKind::Time) {
                status.state = ProviderState::Cached;
                found = Some(reading);
                statuses.push((index, status));
                continue;
            }
            let started = Instant::now();
            let outcome = tokio::time::timeout(self.timeout, provider.fetch()).await;
            status.elapsed_ms = started.elapsed().as_millis() as u64;
            status.state = match outcome {
                Ok(Ok(reading)) if reading.kind() == kind => {
                    if kind != ContextKind::Time {
                        self.cache
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(index, (Instant::now(), reading.clone()));
                    }
                    found = Some(reading);
                    ProviderState::Fresh
                }
                Ok(Ok(other)) => ProviderState::Failed {
                    reason: format!("returned a {:?} reading, expected {kind:?}", other.kind()),
                },
                Ok(Err(e)) => ProviderState::Failed {
                    reason: e.to_string(),
                },
                Err(_) => ProviderState::Failed {
                    reason: format!("timed out after {} ms", self.timeout.as_millis()),
                },
            };
            statuses.push((index, status));
        }
        (found, statuses)
    }
}

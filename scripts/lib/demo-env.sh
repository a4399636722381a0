# Sourced by demo.sh and demo-seeds.sh: the demo's settings, each only where the
# environment (or .env) leaves it unset, so both scripts run the same demo.
export PATH="$HOME/.cargo/bin:$PATH"
# Offline defaults for the real-time context: a configured place and a local feed.
export AURA_LOCATION="${AURA_LOCATION:-the AURA lab}"
export AURA_NEWS_FEED_URL="${AURA_NEWS_FEED_URL:-file://$PWD/examples/data/local-news.rss}"

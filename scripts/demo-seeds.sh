#!/usr/bin/env bash
# The demo over several fresh runs: each on its own new store, with its own learn
# seed. Scores the blueprint's four scenarios in every run and prints a table.
#
#   scripts/demo-seeds.sh [RUNS] [FIRST_SEED]     (default: 5 runs from seed 1)
#
# It tells the demo the blueprint's words; DEMO_DEFAULT=1 runs the demo's own default
# scenarios instead (its first request carries an example).
#
# A scenario counts when the reply does what the blueprint says:
#   fibonacci  "calculate fibonacci for 10" answers `fibonacci(10) = 55`
#   summary    the summary recalls the fibonacci conversation
#   news       the answer uses the configured feed's headline
#   os         the `os` request is refused by the guard, naming its rule
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
first="${2:-1}"
source scripts/lib/demo-env.sh
echo "==> build: the demo, release profile (first run: about 10 min on 2 cores)"
cargo build --release -p aura-examples --bin demo
demo="${CARGO_TARGET_DIR:-target}/release/demo"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The reply printed after the prompt line "> $1", up to the next prompt, without the
# memory notes a summary lists under "(from N memory notes)": the summary itself must
# recall the conversation.
reply() { awk -v p="> $1" '$0 == p {on = 1; next} on && (/^> / || /^\(from [0-9]+ memory notes\)/) {exit} on' "$2"; }

# The blueprint's own words: the demo's default first request adds an example
# ("…, where fibonacci for 10 is 55"), which this measure must not have.
scenarios=(
    "teach yourself to calculate the fibonacci sequence"
    "calculate fibonacci for 10"
    "summarize our previous conversation about the fibonacci sequence"
    "what is the top news story near me right now?"
    "teach yourself to list the files in the current directory using the os module"
)
[ "${DEMO_DEFAULT:-0}" = 1 ] && scenarios=()

passed_all=0
printf '%-6s %-10s %-8s %-6s %-4s %s\n' seed fibonacci summary news os seconds
for ((seed = first; seed < first + runs; seed++)); do
    log="$work/run-$seed.txt"
    start=$SECONDS
    AURA_DATA_DIR="$work/data-$seed" AURA_LEARN_SEED="$seed" "$demo" "${scenarios[@]}" \
        >"$log" 2>"$work/run-$seed.err" || true
    took=$((SECONDS - start))
    fib=no summary=no news=no os=no
    # The answer line itself: a refusal may quote 55 too ("1 give 34 and 1 give 55").
    reply "calculate fibonacci for 10" "$log" | grep -qxF 'fibonacci(10) = 55' && fib=yes
    reply "summarize our previous conversation about the fibonacci sequence" "$log" |
        grep -qi fibonacci && summary=yes
    reply "what is the top news story near me right now?" "$log" |
        grep -qiE "library|tram" && news=yes
    reply "teach yourself to list the files in the current directory using the os module" "$log" |
        grep -qE "guard refused it \[[a-z-]+" && os=yes
    printf '%-6s %-10s %-8s %-6s %-4s %s\n' "$seed" "$fib" "$summary" "$news" "$os" "$took"
    if [[ "$fib$summary$news$os" == yesyesyesyes ]]; then
        passed_all=$((passed_all + 1))
    else
        echo "   run $seed's transcript:"
        sed 's/^/   | /' "$log"
    fi
done
echo "all four scenarios as the blueprint says: $passed_all of $runs runs"

#!/usr/bin/env python3
"""Writes the forge's curriculum: method requests in plain words with hidden checks.

    /usr/bin/python3 scripts/curriculum.py            # rewrite benches/data/curriculum.json
    /usr/bin/python3 scripts/curriculum.py --check    # exit 1 if the file is not what this writes

Every task comes from a parameterised family below (string, list, number, date and
dict manipulations), written by the AURA team. A task is a request as a person would
type it, the method name a person would guess, and checks: calls with inputs the
request never shows and the value a reference implementation returns for them. No
solution is stored: the forge's expert iteration has to find one through the real
learn cycle. Nothing here comes from HumanEval or the everyday suite
(`benches/data/everyday.json`); the forge's tests check that the two stay disjoint.

The split is by task: a task is held out when the first byte of sha256(request) is
below 52 (about a fifth). The output is deterministic, and the manifest beside it
records its sha256.
"""

import argparse
import hashlib
import json
import random
import sys
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benches" / "data" / "curriculum.json"
MANIFEST = ROOT / "benches" / "data" / "curriculum.manifest.json"
HELD_OUT_BELOW = 52  # of 256: about 20 % of tasks

WORDS = ["apple", "river", "stone", "cloud", "banana", "orbit", "garden", "pixel",
         "lemon", "tiger", "echo", "maple", "violet", "sun", "moon", "desk"]


def rand_word(rng):
    return rng.choice(WORDS)


def rand_sentence(rng):
    return " ".join(rng.sample(WORDS, rng.randint(2, 5)))


def rand_ints(rng, lo=-20, hi=40, n=None):
    return [rng.randint(lo, hi) for _ in range(n if n is not None else rng.randint(3, 7))]


def rand_date(rng):
    return date(2000, 1, 1) + timedelta(days=rng.randint(0, 12000))


# Each family: (family, name template, request template, parameters, input maker, reference).
# The input maker returns the argument list of one call; the reference computes the answer.
FAMILIES = []


def family(name, request, params, make, ref):
    FAMILIES.append((name, request, params, make, ref))


LETTERS = ["a", "e", "i", "o", "u", "s", "t", "n", "r", "l"]
# --- strings ---
family("count_letter", "count how many times the letter '{p}' appears in a string", LETTERS,
       lambda r, p: [rand_sentence(r)], lambda p, s: s.count(p))
family("remove_letter", "remove every '{p}' from a string", LETTERS,
       lambda r, p: [rand_sentence(r)], lambda p, s: s.replace(p, ""))
family("replace_letter", "replace every '{p[0]}' in a string with '{p[1]}'",
       [("a", "o"), ("e", "i"), ("s", "z"), ("o", "0"), ("t", "d"), ("n", "m"), (" ", "_"), ("i", "1")],
       lambda r, p: [rand_sentence(r)], lambda p, s: s.replace(p[0], p[1]))
family("repeat_string", "repeat a string {p} times", [2, 3, 4, 5, 6, 10],
       lambda r, p: [rand_word(r)], lambda p, s: s * p)
family("starts_with", "check whether a string starts with '{p}'", ["ap", "ba", "st", "mo", "pi", "ri", "le", "ga"],
       lambda r, p: [r.choice([p + rand_word(r), rand_word(r)])], lambda p, s: s.startswith(p))
family("ends_with", "check whether a string ends with '{p}'", ["er", "on", "en", "le", "ge", "na", "sk", "ho"],
       lambda r, p: [r.choice([rand_word(r) + p, rand_word(r)])], lambda p, s: s.endswith(p))
family("add_prefix", "put '{p}' in front of a string", ["re", "un", "pre", "mr ", ">> ", "the "],
       lambda r, p: [rand_word(r)], lambda p, s: p + s)
family("add_suffix", "add '{p}' to the end of a string", ["!", "ing", "ed", ".txt", "?", "s"],
       lambda r, p: [rand_word(r)], lambda p, s: s + p)
family("first_chars", "return the first {p} characters of a string", [1, 2, 3, 4, 5],
       lambda r, p: [rand_sentence(r)], lambda p, s: s[:p])
family("last_chars", "return the last {p} characters of a string", [1, 2, 3, 4, 5],
       lambda r, p: [rand_sentence(r)], lambda p, s: s[-p:])
family("surround", "surround a string with '{p}' on both sides", ["*", "#", '"', "--", "|", "_", "~"],
       lambda r, p: [rand_word(r)], lambda p, s: p + s + p)
family("count_words_longer", "count the words in a sentence that are longer than {p} letters",
       [2, 3, 4, 5, 6], lambda r, p: [rand_sentence(r)],
       lambda p, s: sum(1 for w in s.split() if len(w) > p))
family("join_words", "join a list of words with '{p}' between them", ["-", ", ", "+", "/", " and ", "", " | "],
       lambda r, p: [r.sample(WORDS, r.randint(2, 4))], lambda p, ws: p.join(ws))
family("char_at", "return the character at position {p} of a string, counting from 0",
       [0, 1, 2, 3, 4], lambda r, p: [rand_word(r) + rand_word(r)], lambda p, s: s[p])
family("lower_case", "turn a string into lower case", [None],
       lambda r, p: [rand_sentence(r).upper()], lambda p, s: s.lower())
family("swap_case", "swap upper and lower case letters in a string", [None],
       lambda r, p: [rand_sentence(r).title()], lambda p, s: s.swapcase())
family("first_word", "return the first word of a sentence", [None],
       lambda r, p: [rand_sentence(r)], lambda p, s: s.split()[0])
family("last_word", "return the last word of a sentence", [None],
       lambda r, p: [rand_sentence(r)], lambda p, s: s.split()[-1])
family("longest_word", "return the longest word in a sentence", [None],
       lambda r, p: [" ".join(r.sample(["a", "ab", "abcdef", "abc", "xyzw"], 4))],
       lambda p, s: max(s.split(), key=len))
family("is_lowercase", "check whether every letter in a string is lower case", [None],
       lambda r, p: [r.choice([rand_word(r), rand_word(r).capitalize()])], lambda p, s: s.islower())
family("word_lengths", "return the length of each word in a sentence as a list", [None],
       lambda r, p: [rand_sentence(r)], lambda p, s: [len(w) for w in s.split()])
family("words_starting_with", "count the words in a sentence that start with '{p}'",
       ["a", "b", "s", "m", "p", "l"], lambda r, p: [rand_sentence(r)],
       lambda p, s: sum(1 for w in s.split() if w.startswith(p)))
family("contains_text", "check whether a string contains '{p}'", ["an", "on", "ee", "mo", "xy"],
       lambda r, p: [rand_sentence(r)], lambda p, s: p in s)
family("pad_right", "pad a string with '{p}' on the right until it is 10 characters long",
       [".", "*", "-"], lambda r, p: [rand_word(r)], lambda p, s: s.ljust(10, p))
family("count_spaces", "count the spaces in a string", [None],
       lambda r, p: [rand_sentence(r)], lambda p, s: s.count(" "))
family("is_empty_string", "check whether a string is empty", [None],
       lambda r, p: [r.choice(["", rand_word(r)])], lambda p, s: s == "")
family("acronym", "make an acronym from the first letters of the words in a sentence, in capitals", [None],
       lambda r, p: [rand_sentence(r)], lambda p, s: "".join(w[0].upper() for w in s.split()))
family("count_unique", "count the different numbers in a list", [None],
       lambda r, p: [rand_ints(r, 0, 6)], lambda p, xs: len(set(xs)))
family("sum_odd", "sum the odd numbers in a list", [None],
       lambda r, p: [rand_ints(r)], lambda p, xs: sum(x for x in xs if x % 2))
# --- numbers ---
family("multiply_by", "multiply a number by {p}", [3, 4, 5, 6, 7, 8, 9, 10, 12, 20],
       lambda r, p: [r.randint(-50, 50)], lambda p, x: x * p)
family("add_number", "add {p} to a number", [1, 2, 5, 10, 20, 42, 100],
       lambda r, p: [r.randint(-50, 50)], lambda p, x: x + p)
family("subtract_number", "subtract {p} from a number", [1, 2, 3, 8, 10, 25, 100],
       lambda r, p: [r.randint(-50, 50)], lambda p, x: x - p)
family("divisible_by", "check whether a number is divisible by {p}", [3, 4, 5, 6, 7, 8, 9, 11, 13],
       lambda r, p: [r.choice([p * r.randint(-9, 9), r.randint(-80, 80)])], lambda p, x: x % p == 0)
family("power_of", "raise a number to the power of {p}", [3, 4, 5, 6],
       lambda r, p: [r.randint(-6, 6)], lambda p, x: x ** p)
family("remainder", "return the remainder when a number is divided by {p}", [2, 3, 4, 5, 6, 7, 10],
       lambda r, p: [r.randint(0, 200)], lambda p, x: x % p)
family("greater_than", "check whether a number is greater than {p}", [0, 1, 10, 18, 50, 100],
       lambda r, p: [r.randint(-20, 150)], lambda p, x: x > p)
family("clamp", "limit a number to the range {p[0]} to {p[1]}", [(0, 10), (1, 100), (-5, 5), (0, 255), (10, 20), (-100, 0)],
       lambda r, p: [r.randint(p[0] - 30, p[1] + 30)], lambda p, x: max(p[0], min(p[1], x)))
family("percent_of", "compute {p} percent of a number", [5, 10, 20, 25, 50, 75],
       lambda r, p: [r.randint(1, 400)], lambda p, x: x * p / 100)
family("half", "halve a number", [None], lambda r, p: [r.randint(-100, 100)], lambda p, x: x / 2)
family("cube", "cube a number", [None], lambda r, p: [r.randint(-9, 9)], lambda p, x: x ** 3)
family("negate", "return the negative of a number", [None],
       lambda r, p: [r.randint(-60, 60)], lambda p, x: -x)
family("last_digit", "return the last digit of a whole number", [None],
       lambda r, p: [r.randint(0, 99999)], lambda p, x: x % 10)
family("count_multiples", "count the numbers from 1 to n that are multiples of {p}", [2, 3, 4, 5, 7, 10],
       lambda r, p: [r.randint(1, 60)], lambda p, n: n // p)
family("sum_up_to", "sum all whole numbers from 1 to n", [None],
       lambda r, p: [r.randint(1, 200)], lambda p, n: n * (n + 1) // 2)
family("is_between", "check whether a number lies between {p[0]} and {p[1]}, both included",
       [(1, 10), (0, 100), (-10, 10), (18, 65), (5, 15), (-3, 3)],
       lambda r, p: [r.randint(p[0] - 15, p[1] + 15)], lambda p, x: p[0] <= x <= p[1])
family("is_perfect_square", "check whether a number is a perfect square", [None],
       lambda r, p: [r.choice([r.randint(0, 30) ** 2, r.randint(2, 900)])],
       lambda p, x: int(x ** 0.5) ** 2 == x)
family("number_sign", "return 1 for a positive number, -1 for a negative one and 0 for zero", [None],
       lambda r, p: [r.choice([0, r.randint(-90, 90)])], lambda p, x: (x > 0) - (x < 0))
# unit conversions (none of them in the everyday suite)
for unit_name, request, factor in [
    ("days_to_hours", "convert days to hours", 24), ("weeks_to_days", "convert weeks to days", 7),
    ("kilometers_to_meters", "convert kilometers to meters", 1000),
    ("meters_to_centimeters", "convert meters to centimeters", 100),
    ("feet_to_inches", "convert feet to inches", 12), ("years_to_months", "convert years to months", 12),
    ("kilograms_to_grams", "convert kilograms to grams", 1000),
    ("liters_to_milliliters", "convert liters to milliliters", 1000),
]:
    family(unit_name, request, [factor], lambda r, p: [r.randint(0, 90)], lambda p, x: x * p)
# --- lists ---
family("sum_greater", "sum the numbers in a list that are greater than {p}", [0, 3, 5, 10, 20],
       lambda r, p: [rand_ints(r)], lambda p, xs: sum(x for x in xs if x > p))
family("count_divisible", "count the numbers in a list that are divisible by {p}", [2, 3, 4, 5, 6, 7],
       lambda r, p: [rand_ints(r)], lambda p, xs: sum(1 for x in xs if x % p == 0))
family("scale_list", "multiply every number in a list by {p}", [2, 3, 4, 5, 10],
       lambda r, p: [rand_ints(r)], lambda p, xs: [x * p for x in xs])
family("shift_list", "add {p} to every number in a list", [1, 2, 4, 10, 100],
       lambda r, p: [rand_ints(r)], lambda p, xs: [x + p for x in xs])
family("keep_below", "keep only the numbers in a list that are smaller than {p}", [0, 5, 10, 25],
       lambda r, p: [rand_ints(r)], lambda p, xs: [x for x in xs if x < p])
family("first_items", "return the first {p} items of a list", [1, 2, 3, 4, 5],
       lambda r, p: [rand_ints(r, n=6)], lambda p, xs: xs[:p])
family("count_even", "count the even numbers in a list", [None],
       lambda r, p: [rand_ints(r)], lambda p, xs: sum(1 for x in xs if x % 2 == 0))
family("sum_squares", "sum the squares of a list of numbers", [None],
       lambda r, p: [rand_ints(r, -9, 9)], lambda p, xs: sum(x * x for x in xs))
family("range_of_list", "return the difference between the largest and smallest number in a list", [None],
       lambda r, p: [rand_ints(r)], lambda p, xs: max(xs) - min(xs))
family("count_negative", "count the negative numbers in a list", [None],
       lambda r, p: [rand_ints(r)], lambda p, xs: sum(1 for x in xs if x < 0))
family("only_positive", "keep only the positive numbers of a list", [None],
       lambda r, p: [rand_ints(r)], lambda p, xs: [x for x in xs if x > 0])
family("square_list", "square every number in a list", [None],
       lambda r, p: [rand_ints(r, -9, 9)], lambda p, xs: [x * x for x in xs])
family("second_largest", "return the second largest number in a list of distinct numbers", [None],
       lambda r, p: [r.sample(range(-30, 60), r.randint(3, 7))], lambda p, xs: sorted(xs)[-2])
family("contains", "check whether a list contains the number {p}", [0, 3, 7, 13, 42],
       lambda r, p: [r.choice([rand_ints(r, 0, 15) + [p], rand_ints(r, 20, 40)])], lambda p, xs: p in xs)
family("sort_descending", "sort a list of numbers from largest to smallest", [None],
       lambda r, p: [rand_ints(r)], lambda p, xs: sorted(xs, reverse=True))
family("index_of_max", "return the position of the largest number in a list, counting from 0", [None],
       lambda r, p: [r.sample(range(-30, 60), r.randint(3, 7))], lambda p, xs: xs.index(max(xs)))
family("count_items", "count how many items a list has", [None],
       lambda r, p: [rand_ints(r, n=r.randint(0, 9))], lambda p, xs: len(xs))
family("running_total", "return the running totals of a list of numbers", [None],
       lambda r, p: [rand_ints(r, -5, 9)], lambda p, xs: [sum(xs[:i + 1]) for i in range(len(xs))])
family("all_positive", "check whether every number in a list is positive", [None],
       lambda r, p: [r.choice([rand_ints(r, 1, 30), rand_ints(r, -5, 30)])], lambda p, xs: all(x > 0 for x in xs))
family("longest_string", "return the longest string in a list of strings", [None],
       lambda r, p: [r.sample(["a", "bb", "ccccc", "dddddddd", "eee"], 3)], lambda p, xs: max(xs, key=len))
family("join_numbers", "join a list of numbers into one string separated by '{p}'", [",", " ", "-", ";", ", "],
       lambda r, p: [rand_ints(r, 0, 9)], lambda p, xs: p.join(str(x) for x in xs))
family("last_items", "return the last {p} items of a list", [1, 2, 3, 4],
       lambda r, p: [rand_ints(r, n=6)], lambda p, xs: xs[-p:])
family("count_greater", "count the numbers in a list that are greater than {p}", [0, 5, 10, 20],
       lambda r, p: [rand_ints(r)], lambda p, xs: sum(1 for x in xs if x > p))
family("longer_than", "check whether a list has more than {p} items", [2, 3, 5],
       lambda r, p: [rand_ints(r, n=r.randint(0, 8))], lambda p, xs: len(xs) > p)
family("larger_of_two", "return the larger of two numbers", [None],
       lambda r, p: [r.randint(-50, 50), r.randint(-50, 50)], lambda p, a, b: max(a, b))
family("smaller_of_two", "return the smaller of two numbers", [None],
       lambda r, p: [r.randint(-50, 50), r.randint(-50, 50)], lambda p, a, b: min(a, b))
family("mean_of_two", "compute the mean of two numbers", [None],
       lambda r, p: [r.randint(-50, 50), r.randint(-50, 50)], lambda p, a, b: (a + b) / 2)
family("multiple_of_both", "check whether a number is a multiple of both {p[0]} and {p[1]}",
       [(2, 3), (3, 5), (2, 7), (4, 6)],
       lambda r, p: [r.choice([p[0] * p[1] * r.randint(0, 9), r.randint(0, 200)])],
       lambda p, x: x % p[0] == 0 and x % p[1] == 0)
family("round_to", "round a number to {p} decimal places", [1, 2, 3],
       lambda r, p: [round(r.uniform(-100, 100), 5)], lambda p, x: round(x, p))
# --- dicts ---
family("sum_values", "sum the values of a dictionary", [None],
       lambda r, p: [{w: r.randint(0, 20) for w in r.sample(WORDS, 3)}], lambda p, d: sum(d.values()))
family("sorted_keys", "return the keys of a dictionary in alphabetical order", [None],
       lambda r, p: [{w: r.randint(0, 20) for w in r.sample(WORDS, 4)}], lambda p, d: sorted(d))
family("count_keys", "count the keys of a dictionary", [None],
       lambda r, p: [{w: 1 for w in r.sample(WORDS, r.randint(0, 5))}], lambda p, d: len(d))
family("key_of_max", "return the key with the largest value in a dictionary", [None],
       lambda r, p: [dict(zip(r.sample(WORDS, 4), r.sample(range(50), 4)))], lambda p, d: max(d, key=d.get))
family("word_counts", "count how many times each word appears in a sentence, as a dictionary", [None],
       lambda r, p: [" ".join(r.choice(WORDS[:4]) for _ in range(5))],
       lambda p, s: {w: s.split().count(w) for w in s.split()})
family("get_or_default", "look up a key in a dictionary and return {p} when it is missing", [0, -1, 1, 100],
       lambda r, p: [{w: r.randint(1, 9) for w in WORDS[:3]}, r.choice(WORDS[:5])],
       lambda p, d, k: d.get(k, p))
# --- dates (ISO strings in, numbers or strings out) ---
family("year_of", "return the year of a date written like 2021-04-30", [None],
       lambda r, p: [rand_date(r).isoformat()], lambda p, s: int(s[:4]))
family("month_of", "return the month number of a date written like 2021-04-30", [None],
       lambda r, p: [rand_date(r).isoformat()], lambda p, s: int(s[5:7]))
family("days_between", "count the days between two dates written like 2021-04-30", [None],
       lambda r, p: [rand_date(r).isoformat(), rand_date(r).isoformat()],
       lambda p, a, b: abs((date.fromisoformat(b) - date.fromisoformat(a)).days))
family("add_days", "add {p} days to a date written like 2021-04-30 and return the new date the same way",
       [1, 2, 7, 10, 30], lambda r, p: [rand_date(r).isoformat()],
       lambda p, s: (date.fromisoformat(s) + timedelta(days=p)).isoformat())
family("weekday_name", "return the weekday name of a date written like 2021-04-30", [None],
       lambda r, p: [rand_date(r).isoformat()], lambda p, s: date.fromisoformat(s).strftime("%A"))


def tasks():
    out = []
    for name, request, params, make, ref in FAMILIES:
        for p in params:
            text = "teach yourself to " + request.format(p=p)
            rng = random.Random(text)
            checks, seen = [], set()
            for _ in range(40):
                args = make(rng, p)
                key = json.dumps(args)
                if key in seen:
                    continue
                seen.add(key)
                checks.append([args, ref(p, *args)])
                if len(checks) == 4:
                    break
            digest = hashlib.sha256(text.encode()).digest()
            out.append({
                "request": text,
                "name": name,
                "family": name,
                "split": "held_out" if digest[0] < HELD_OUT_BELOW else "train",
                "checks": checks,
            })
    return out


def render():
    data = {
        "about": "The forge's curriculum (scripts/curriculum.py): method requests in plain words "
                 "with hidden checks and no solutions, from parameterised families written by the "
                 "AURA team. Disjoint from the everyday suite; nothing from HumanEval.",
        "tasks": tasks(),
    }
    lines = ",\n".join("  " + json.dumps(t) for t in data["tasks"])
    return '{\n "about": %s,\n "tasks": [\n%s\n ]\n}\n' % (json.dumps(data["about"]), lines)


def manifest(text):
    ts = json.loads(text)["tasks"]
    return json.dumps({
        "file": "curriculum.json",
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "tasks": len(ts),
        "held_out": sum(t["split"] == "held_out" for t in ts),
        "source": "generated by scripts/curriculum.py from task families written by the AURA team",
        "licence": "the AURA project's licence (see Cargo.toml)",
    }, indent=1) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="fail if the files differ from what this writes")
    args = ap.parse_args()
    text = render()
    man = manifest(text)
    if args.check:
        ok = OUT.read_text() == text and MANIFEST.read_text() == man
        print("curriculum up to date" if ok else "curriculum differs: run scripts/curriculum.py")
        sys.exit(0 if ok else 1)
    OUT.write_text(text)
    MANIFEST.write_text(man)
    print(f"wrote {OUT.relative_to(ROOT)}: {json.loads(man)['tasks']} tasks, {json.loads(man)['held_out']} held out")


if __name__ == "__main__":
    main()

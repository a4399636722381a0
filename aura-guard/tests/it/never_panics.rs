//! The guard never panics (or overflows its stack): arbitrary strings, Python-ish
//! token soup, format strings, and random mutations of the red-team corpus.

use aura_guard::{Guard, Shape};
use proptest::prelude::*;

const CORPUS: &str = include_str!("../redteam/escapes.py");

fn audit_all_shapes(src: &str) {
    let guard = Guard::default();
    for shape in [
        Shape::Module,
        Shape::AnyMethod,
        Shape::Tests,
        Shape::Method {
            selector: "m".to_owned(),
        },
    ] {
        let v = guard.audit_shape(src, &shape);
        assert_eq!(v.accepted, v.violations.is_empty());
        for x in &v.violations {
            assert!(x.line >= 1 && x.col >= 1);
        }
    }
}

fn cases() -> Vec<&'static str> {
    CORPUS.split("\n# === ").collect()
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, String),
    Duplicate(usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0usize..20).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), "[\\PC\n\t\\\\'\"(){}\\[\\]:.,_ ]{0,12}")
            .prop_map(|(a, s)| Mutation::Insert(a, s)),
        (any::<usize>(), 0usize..40, any::<usize>())
            .prop_map(|(a, n, b)| Mutation::Duplicate(a, n, b)),
    ]
}

fn apply(src: &str, muts: &[Mutation]) -> String {
    let mut s = src.to_owned();
    for m in muts {
        let len = s.len().max(1);
        match m {
            Mutation::Delete(a, n) => {
                let start = floor_boundary(&s, a % len);
                let end = floor_boundary(&s, start + n);
                s.replace_range(start..end, "");
            }
            Mutation::Insert(a, text) => {
                let at = floor_boundary(&s, a % len);
                s.insert_str(at, text);
            }
            Mutation::Duplicate(a, n, b) => {
                let start = floor_boundary(&s, a % len);
                let end = floor_boundary(&s, start + n);
                let piece = s[start..end].to_owned();
                let at = floor_boundary(&s, b % len);
                s.insert_str(at, &piece);
            }
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_strings(s in any::<String>()) {
        audit_all_shapes(&s);
    }

    #[test]
    fn python_token_soup(s in "([a-z_]{1,6}|def |class |lambda |import |from |async |await |match |case |if |else|:|\\(|\\)|\\[|\\]|\\{|\\}|\\.|,|=|\\+|-|\\*|@|'|\"|f'|\n    |\n| |#|\\\\|0x1f|1e5|ｅｘｅｃ|__class__|gi_frame|getattr|format|!r){0,60}") {
        audit_all_shapes(&s);
    }

    #[test]
    fn format_strings(s in "[{}\\[\\].!:_a-z0-9 ]{0,40}") {
        audit_all_shapes(&format!("def m(self):\n    return '{s}'.format(self)\n"));
        audit_all_shapes(&format!("def m(self):\n    return '{s}'.format_map({{}})\n"));
    }

    #[test]
    fn mutated_corpus(idx in any::<usize>(), muts in proptest::collection::vec(mutation(), 1..6)) {
        let cases = cases();
        let src = cases[idx % cases.len()];
        audit_all_shapes(&apply(src, &muts));
    }
}

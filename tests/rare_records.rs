//! Rare records (4 GiB+ sizes, hard links, times outside 1970..2106) through a cached scan
//! and its catch-up: every transition between a plain node and a rare one must leave the
//! tree equal to a fresh scan.

mod common;

use std::path::PathBuf;

use common::difftree::check;
use common::difftree::{Case, Op};

const GIB: u64 = 1 << 30;

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

fn case(age_ms: u64, setup: Vec<Op>, rounds: Vec<Vec<Op>>) -> Case {
    Case {
        seed: 0,
        age_ms,
        nobody: false,
        race: false,
        threads: 2,
        setup,
        rounds,
    }
}

fn assert_caught_up(case: &Case) {
    if let Err(f) = check::replay(case, None) {
        panic!("{}", f.report(12));
    }
}

fn grow_and_shrink(age_ms: u64) -> Case {
    case(
        age_ms,
        vec![
            Op::MkdirP(p("root/d")),
            Op::Write(p("root/d/small"), 10_000),
            Op::Truncate(p("root/d/big"), 5 * GIB),
        ],
        vec![
            vec![
                Op::Truncate(p("root/d/small"), 6 * GIB),
                Op::Truncate(p("root/d/big"), 1000),
            ],
            vec![
                Op::Truncate(p("root/d/small"), 3000),
                Op::Truncate(p("root/d/big"), 9 * GIB),
            ],
        ],
    )
}

#[test]
fn a_file_growing_past_4_gib_and_back_is_caught_up() {
    assert_caught_up(&grow_and_shrink(0));
}

#[test]
fn a_file_growing_past_4_gib_and_back_is_caught_up_in_aged_directories() {
    assert_caught_up(&grow_and_shrink(3100));
}

fn links_come_and_go(age_ms: u64) -> Case {
    case(
        age_ms,
        vec![
            Op::MkdirP(p("root/a")),
            Op::MkdirP(p("root/b")),
            Op::Write(p("root/a/f"), 10_000),
            Op::Write(p("root/a/g"), 20_000),
            Op::Link(p("root/a/g"), p("root/b/g2")),
        ],
        vec![
            vec![
                Op::Link(p("root/a/f"), p("root/b/f2")),
                Op::Remove(p("root/b/g2")),
                Op::Append(p("root/a/g"), 5000),
            ],
            vec![
                Op::Truncate(p("root/b/f2"), 5 * GIB),
                Op::Link(p("root/a/g"), p("root/a/g3")),
            ],
            vec![Op::Remove(p("root/a/f")), Op::Truncate(p("root/a/g3"), 100)],
            vec![Op::Truncate(p("root/b/f2"), 7), Op::Remove(p("root/a/g"))],
        ],
    )
}

#[test]
fn hard_links_made_and_lost_are_caught_up() {
    assert_caught_up(&links_come_and_go(0));
}

#[test]
fn hard_links_made_and_lost_are_caught_up_in_aged_directories() {
    assert_caught_up(&links_come_and_go(3100));
}

fn times_out_of_range(age_ms: u64) -> Case {
    case(
        age_ms,
        vec![
            Op::MkdirP(p("root/d")),
            Op::Write(p("root/d/f"), 10_000),
            Op::Write(p("root/d/g"), 10_000),
            Op::Touch(p("root/d/g"), -5000, 12),
        ],
        vec![
            vec![
                Op::Touch(p("root/d/f"), -100, 5),
                Op::Touch(p("root/d/g"), 1_000_000, 0),
            ],
            vec![
                Op::Append(p("root/d/f"), 10),
                Op::Truncate(p("root/d/g"), 5 * GIB),
            ],
        ],
    )
}

#[test]
fn files_touched_before_1970_and_back_are_caught_up() {
    assert_caught_up(&times_out_of_range(0));
}

#[test]
fn files_touched_before_1970_and_back_are_caught_up_in_aged_directories() {
    assert_caught_up(&times_out_of_range(3100));
}

fn times_out_of_the_dir_range(age_ms: u64) -> Case {
    case(
        age_ms,
        vec![
            Op::MkdirP(p("root/d/e")),
            Op::Write(p("root/d/e/f"), 10_000),
            Op::Touch(p("root/d/e"), -11_000_000_000, 3),
            Op::Touch(p("root/d"), 10_000_000_000, 0),
        ],
        vec![
            vec![
                Op::Write(p("root/d/e/g"), 100),
                Op::Touch(p("root/d/e"), -11_000_000_000, 3),
                Op::Touch(p("root/d/e/f"), 5_000_000_000, 1),
                Op::Touch(p("root/d"), 1_000_000, 0),
            ],
            vec![
                Op::Remove(p("root/d/e/g")),
                Op::Touch(p("root/d/e"), 1_000_000, 0),
                Op::Touch(p("root/d"), -11_000_000_000, 0),
            ],
        ],
    )
}

#[test]
fn directories_dated_outside_1678_2262_are_caught_up() {
    assert_caught_up(&times_out_of_the_dir_range(0));
}

#[test]
fn directories_dated_outside_1678_2262_are_caught_up_in_aged_directories() {
    assert_caught_up(&times_out_of_the_dir_range(3100));
}

//! The changes from the helper list git has to the one wanted, as `git
//! config --global` commands, each one atomic write of git's (its own lock
//! file and a rename). Their order is chosen so that a run killed between
//! any two of them, or a git reading the list meanwhile, finds every helper
//! of the user's still there and not cut off by a reset of ours: entries
//! are added before the ones they replace are taken out, and a reset is
//! written only where it is final.
//!
//! git config addresses values, not positions: equal values are changed
//! together, and `--replace-all` leaves its one new value where the last
//! match was. A temporary no-op helper, [`MARKER`], holds a place at the end
//! until a reset can take it.

/// A helper that does nothing (git runs it with `sh -c`), holding a place
/// in the list during a change; a run killed midway may leave it, and the
/// next run takes it out.
pub const MARKER: &str = "!: lightfi-token setup git unfinished";

/// One change to the helper list, as a `git config --global` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Append a value.
    Add(String),
    /// Remove every value.
    UnsetAll,
    /// Remove every value equal to this one.
    Unset(String),
    /// Remove every entry whose value is one of `values`, and put `with`
    /// where the last of them was.
    Replace { with: String, values: Vec<String> },
}

impl Step {
    pub fn args(&self, key: &str) -> Vec<String> {
        let mut args: Vec<String> = vec!["config".into(), "--global".into()];
        match self {
            Step::Add(value) => args.extend(["--add".into(), key.into(), value.clone()]),
            Step::UnsetAll => args.extend(["--unset-all".into(), key.into()]),
            // --fixed-value (git 2.30): the value is compared as it is, not as a regex.
            Step::Unset(value) => {
                args.extend(["--fixed-value".into(), "--unset-all".into(), key.into(), value.clone()])
            }
            Step::Replace { with, values } if values.len() == 1 => args.extend([
                "--fixed-value".into(),
                "--replace-all".into(),
                key.into(),
                with.clone(),
                values[0].clone(),
            ]),
            Step::Replace { with, values } => {
                args.extend(["--replace-all".into(), key.into(), with.clone(), any_of(values)])
            }
        }
        args
    }
}

/// A POSIX extended regex matching exactly the values given.
fn any_of(values: &[String]) -> String {
    let escape = |v: &String| {
        v.chars()
            .flat_map(|c| {
                let special = r"\^$.|?*+()[]{}".contains(c);
                special.then_some('\\').into_iter().chain([c])
            })
            .collect::<String>()
    };
    let words: Vec<String> = values.iter().filter(|v| !v.is_empty()).map(escape).collect();
    let empty = values.iter().any(String::is_empty);
    match (words.is_empty(), empty) {
        (true, _) => "^$".into(),
        (false, false) => format!("^({})$", words.join("|")),
        (false, true) => format!("^({})?$", words.join("|")),
    }
}

/// Which entries are ours: values that `is_ours` recognises, the marker,
/// the resets right before either (several, where runs raced before there
/// was a lock), and after a marker the copies of earlier values that a
/// killed [`rebuild`] appended.
fn ours_mask(values: &[String], is_ours: impl Fn(&str) -> bool) -> Vec<bool> {
    let mut mask: Vec<bool> = values.iter().map(|v| v == MARKER || is_ours(v)).collect();
    if let Some(marker) = values.iter().position(|v| v == MARKER) {
        for i in marker + 1..values.len() {
            mask[i] |= !values[i].is_empty() && values[..marker].contains(&values[i]);
        }
    }
    for i in 0..values.len() {
        if mask[i] && !values[i].is_empty() {
            let mut j = i;
            while j > 0 && values[j - 1].is_empty() {
                j -= 1;
                mask[j] = true;
            }
        }
    }
    mask
}

/// The list with our entries taken out: the user's own, in their order.
pub fn theirs(values: &[String], is_ours: impl Fn(&str) -> bool) -> Vec<String> {
    let mask = ours_mask(values, is_ours);
    values
        .iter()
        .zip(&mask)
        .filter(|(_, ours)| !**ours)
        .map(|(v, _)| v.clone())
        .collect()
}

/// The steps that take our entries out of `values`, leaving the others in their order.
pub fn remove(values: &[String], is_ours: impl Fn(&str) -> bool) -> Vec<Step> {
    let mask = ours_mask(values, &is_ours);
    if !mask.contains(&true) {
        return vec![];
    }
    let remaining = theirs(values, &is_ours);
    if remaining.is_empty() {
        return vec![Step::UnsetAll];
    }
    let ours: Vec<&String> = values.iter().zip(&mask).filter(|(_, o)| **o).map(|(v, _)| v).collect();
    let mut helpers: Vec<String> = vec![];
    for value in &ours {
        if !value.is_empty() && *value != MARKER && !remaining.contains(value) && !helpers.contains(value) {
            helpers.push(value.to_string());
        }
    }
    let our_resets = ours.iter().any(|v| v.is_empty());
    let copies = ours.iter().any(|v| !v.is_empty() && remaining.contains(v));
    if copies || (our_resets && remaining.iter().any(String::is_empty)) {
        return rebuild(&remaining, helpers);
    }
    let mut steps = vec![];
    // A marker does nothing: taking it out changes nothing git does.
    if ours.iter().any(|v| *v == MARKER) {
        steps.push(Step::Unset(MARKER.into()));
    }
    // Our resets before our helpers: the helpers then come after the
    // user's, which git still asks, where a reset of ours left last would
    // cut the user's off.
    if our_resets {
        steps.push(Step::Unset(String::new()));
    }
    steps.extend(helpers.into_iter().map(Step::Unset));
    steps
}

/// Resets of ours and of the user's are the same value, which git config
/// changes all together. So the user's part from their reset on is written
/// again at the end (a marker standing for the reset), our helpers go, the
/// resets and markers fold into the last marker's place, and each value
/// after it into its last copy: every user entry is there at every step.
/// This needs the user's part to hold one reset and no value twice from it
/// on; any other list (made by hand) is written anew, which a kill midway
/// can cut short.
fn rebuild(remaining: &[String], helpers: Vec<String>) -> Vec<Step> {
    let resets: Vec<usize> = (0..remaining.len()).filter(|&i| remaining[i].is_empty()).collect();
    let split = match resets[..] {
        [reset] => Some(remaining.split_at(reset)),
        _ => None,
    };
    let (before, after) = match split {
        Some((before, after)) => (before, &after[1..]),
        None => (remaining, &[][..]),
    };
    let distinct = after
        .iter()
        .enumerate()
        .all(|(i, v)| !after[..i].contains(v) && !before.contains(v));
    if split.is_none() || !distinct {
        return std::iter::once(Step::UnsetAll)
            .chain(remaining.iter().map(|v| Step::Add(v.clone())))
            .collect();
    }
    let mut steps = vec![Step::Add(MARKER.into())];
    steps.extend(after.iter().map(|v| Step::Add(v.clone())));
    steps.extend(helpers.into_iter().map(Step::Unset));
    steps.push(Step::Replace {
        with: String::new(),
        values: vec![String::new(), MARKER.into()],
    });
    steps.extend(after.iter().map(|v| Step::Replace {
        with: v.clone(),
        values: vec![v.clone()],
    }));
    steps
}

/// The steps from `values` to the user's list followed by the reset and
/// `ours`: none when it is so already.
pub fn setup(values: &[String], ours: &str, is_ours: impl Fn(&str) -> bool) -> Vec<Step> {
    let mut wanted = theirs(values, &is_ours);
    wanted.extend([String::new(), ours.to_string()]);
    if values == wanted {
        return vec![];
    }
    // Another profile's helper in the right place: one change.
    if let [rest @ .., reset, other] = values
        && reset.is_empty()
        && is_ours(other)
        && rest == &wanted[..wanted.len() - 2]
    {
        return vec![Step::Replace {
            with: ours.to_string(),
            values: vec![other.clone()],
        }];
    }
    let mut steps = remove(values, &is_ours);
    steps.extend(append(ours));
    steps
}

/// The reset and `ours` at the end: the marker first, becoming the reset
/// last, so the list never ends in a bare reset that would cut off the
/// user's helpers.
fn append(ours: &str) -> [Step; 3] {
    [
        Step::Add(MARKER.into()),
        Step::Add(ours.to_string()),
        Step::Replace {
            with: String::new(),
            values: vec![MARKER.into()],
        },
    ]
}

/// The steps from `values`, left by a run killed midway, back to `theirs`,
/// the user's list that run recorded before its first change (the middle of
/// a [`rebuild`] cannot always be told apart from a list of the user's).
/// Every entry of theirs is still there, which a rebuild needs; otherwise
/// (a list changed by hand since) it is written anew. Only our helpers and
/// markers are taken out: a helper added by hand since stays.
pub fn restore(values: &[String], theirs: &[String], ours: Option<&str>, is_ours: impl Fn(&str) -> bool) -> Vec<Step> {
    let mut extra: Vec<String> = vec![];
    for value in values {
        if is_ours(value) && !theirs.contains(value) && !extra.contains(value) {
            extra.push(value.clone());
        }
    }
    let count = |list: &[String], v: &String| list.iter().filter(|x| *x == v).count();
    let mut steps = if theirs.iter().all(|v| count(values, v) >= count(theirs, v)) && !theirs.is_empty() {
        rebuild(theirs, extra)
    } else {
        std::iter::once(Step::UnsetAll)
            .chain(theirs.iter().map(|v| Step::Add(v.clone())))
            .collect()
    };
    if let Some(ours) = ours {
        steps.extend(append(ours));
    }
    steps
}

/// What `steps` do to `values`, as git config does it: for tests.
#[cfg(test)]
fn apply(values: &[String], steps: &[Step], mut check: impl FnMut(&[String])) -> Vec<String> {
    let mut list = values.to_vec();
    for step in steps {
        match step {
            Step::Add(v) => list.push(v.clone()),
            Step::UnsetAll => list.clear(),
            Step::Unset(v) => list.retain(|x| x != v),
            Step::Replace { with, values } => {
                let last = list.iter().rposition(|x| values.contains(x)).expect("a match");
                list[last] = with.clone();
                let mut i = 0;
                list.retain(|x| {
                    i += 1;
                    i - 1 == last || !values.contains(x)
                });
            }
        }
        check(&list);
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "!lightfi-token git-credential";
    const STAGING: &str = "!lightfi-token --profile staging git-credential";

    fn is_ours(v: &str) -> bool {
        v.starts_with("!lightfi-token") || v.starts_with("/opt/bin/lightfi-token")
    }

    fn list(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    /// The user's helpers that git would ask (those after the last reset).
    fn asked(values: &[String]) -> Vec<String> {
        let start = values.iter().rposition(String::is_empty).map_or(0, |i| i + 1);
        values[start..]
            .iter()
            .filter(|v| !is_ours(v) && *v != MARKER)
            .cloned()
            .collect()
    }

    /// Every intermediate list holds each of the user's entries at least as
    /// often as `user` does, and git asks the user's helpers it asked
    /// before (or, when ours is in place, ours).
    fn check_every_step(values: &[String], steps: &[Step], user: &[String], done: &[String]) {
        let before = asked(values);
        let result = apply(values, steps, |now| {
            for v in user {
                let want = user.iter().filter(|x| *x == v).count();
                let have = now.iter().filter(|x| *x == v).count();
                assert!(have >= want, "{v:?} lost in {now:?} (from {values:?})");
            }
            let ours_active = now.last().is_some_and(|v| is_ours(v));
            assert!(
                ours_active || before.iter().all(|h| asked(now).contains(h)),
                "the user's helpers are cut off in {now:?} (from {values:?})"
            );
        });
        assert_eq!(result, done, "from {values:?} by {steps:?}");
    }

    #[test]
    fn setup_appends_the_reset_and_the_helper_once_and_keeps_every_user_entry() {
        let cases: [&[&str]; 9] = [
            &[],
            &["store"],
            &["", "store"],
            &["", OURS, "cache"],
            &["", "store", "", OURS, "cache"],
            &["", "store", "", "", OURS, OURS, "", OURS],
            &["cache", "", STAGING],
            &["", "cache", MARKER],
            &["", "store", "", OURS, MARKER, "store"],
        ];
        for case in cases {
            let values = list(case);
            let user = theirs(&values, is_ours);
            let mut done = user.clone();
            done.extend(list(&["", OURS]));
            let steps = setup(&values, OURS, is_ours);
            check_every_step(&values, &steps, &user, &done);
            assert_eq!(setup(&done, OURS, is_ours), [], "a second run changes nothing");
        }
        assert_eq!(
            setup(&list(&["cache", "", STAGING]), OURS, is_ours),
            [Step::Replace {
                with: OURS.into(),
                values: list(&[STAGING])
            }]
        );
    }

    #[test]
    fn remove_takes_out_only_ours_and_keeps_every_user_entry_at_every_step() {
        let cases: [(&[&str], &[&str]); 9] = [
            (&["cache"], &["cache"]),
            (&["", OURS], &[]),
            (&["cache", "", OURS], &["cache"]),
            (&["", "store", "", OURS], &["", "store"]),
            (&["", "store", "", "", OURS, OURS, OURS], &["", "store"]),
            (&["", "store", "", OURS, "cache"], &["", "store", "cache"]),
            (&["a", "", "b", "", OURS, "c"], &["a", "", "b", "c"]),
            (&["", "store", MARKER], &["", "store"]),
            (&["/opt/bin/lightfi-token git-credential"], &[]),
        ];
        for (before, after) in cases {
            let values = list(before);
            let steps = remove(&values, is_ours);
            let user = list(after);
            check_every_step(&values, &steps, &user, &user);
        }
        assert_eq!(remove(&list(&["cache"]), is_ours), []);
    }

    #[test]
    fn lists_made_by_hand_are_still_set_right() {
        // Two resets of the user's: written anew (not kill-safe, but right).
        let values = list(&["", "a", "", "b", "", OURS]);
        let steps = remove(&values, is_ours);
        assert_eq!(steps[0], Step::UnsetAll);
        assert_eq!(apply(&values, &steps, |_| {}), list(&["", "a", "", "b"]));
    }

    #[test]
    fn a_killed_rebuild_is_finished_from_the_list_it_recorded() {
        let start = list(&["", "store", "", OURS]);
        let user = list(&["", "store"]);
        let steps = remove(&start, is_ours);
        for killed_after in 0..steps.len() {
            let left = apply(&start, &steps[..killed_after], |_| {});
            let restored = restore(&left, &user, None, is_ours);
            check_every_step(&left, &restored, &user, &user);
            let mut done = user.clone();
            done.extend(list(&["", OURS]));
            assert_eq!(apply(&left, &restore(&left, &user, Some(OURS), is_ours), |_| {}), done);
        }
        // Written anew when an entry of the recorded list is gone.
        assert_eq!(restore(&list(&["store"]), &user, None, is_ours)[0], Step::UnsetAll);
    }

    #[test]
    fn value_patterns_match_exactly_the_values() {
        assert_eq!(
            any_of(&list(&["", MARKER])),
            r"^(!: lightfi-token setup git unfinished)?$"
        );
        assert_eq!(any_of(&list(&["a.b", "c+"])), r"^(a\.b|c\+)$");
        assert_eq!(any_of(&list(&[""])), "^$");
    }
}

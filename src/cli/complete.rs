//! Completion for `kubectl prefect-doctor …`: kubectl (1.26 and later) completes a plugin's words by
//! running `kubectl_complete-<plugin>` with the words typed after the plugin's name, the last one the
//! word being completed, and reads cobra's completion protocol back: one candidate a line
//! (`word<TAB>description`), then `:<directive>`. Linked under that name, the doctor answers it
//! from the same clap definitions its completion scripts come from, check ids included.

use clap::{Arg, ArgAction, Command};

use crate::catalog::Catalog;

/// cobra's `ShellCompDirectiveNoFileComp`: offer no file names after the candidates.
const NO_FILES: u8 = 4;
/// cobra's `ShellCompDirectiveDefault`: the shell may offer file names.
const FILES: u8 = 0;

/// Is `argv0` the completion helper's name (`kubectl_complete-prefect_doctor`)?
pub fn is_kubectl_complete(argv0: Option<&std::ffi::OsStr>) -> bool {
    argv0
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_name)
        .is_some_and(|f| f.to_string_lossy().starts_with("kubectl_complete-"))
}

/// The protocol's answer for `words` (the last the one being typed, possibly empty).
pub fn answer(words: &[String]) -> String {
    let root = super::shell::visible_command();
    let (candidates, directive) = candidates(&root, words);
    let mut out = String::new();
    for (word, help) in candidates {
        out.push_str(&word);
        if !help.is_empty() {
            out.push('\t');
            out.push_str(&help);
        }
        out.push('\n');
    }
    out.push_str(&format!(":{directive}\n"));
    out
}

fn takes_value(a: &Arg) -> bool {
    matches!(a.get_action(), ArgAction::Set | ArgAction::Append)
}

fn long<'a>(cmd: &'a Command, globals: &'a [Arg], name: &str) -> Option<&'a Arg> {
    cmd.get_arguments()
        .chain(globals)
        .find(|a| a.get_long() == Some(name))
}

fn short<'a>(cmd: &'a Command, globals: &'a [Arg], c: char) -> Option<&'a Arg> {
    cmd.get_arguments()
        .chain(globals)
        .find(|a| a.get_short() == Some(c))
}

fn first_line(s: Option<&clap::builder::StyledStr>) -> String {
    s.map(|h| h.to_string())
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Check ids, for `--only`, `--skip` and `explain`.
fn check_ids() -> Vec<(String, String)> {
    Catalog::builtin()
        .entries()
        .iter()
        .map(|c| (c.id.clone(), c.title.clone()))
        .collect()
}

/// What may stand in a value of `arg`, and whether file names may too.
fn values(arg: &Arg) -> (Vec<(String, String)>, u8) {
    let id = arg.get_id().as_str();
    if matches!(id, "only" | "skip" | "id") {
        return (check_ids(), NO_FILES);
    }
    let possible = arg.get_possible_values();
    if !possible.is_empty() {
        let v = possible
            .iter()
            .filter(|p| !p.is_hide_set())
            .map(|p| (p.get_name().to_string(), first_line(p.get_help())))
            .collect();
        return (v, NO_FILES);
    }
    let named = arg
        .get_value_names()
        .and_then(|n| n.first())
        .map(|n| n.as_str())
        .unwrap_or("");
    if matches!(named, "FILE" | "PATH" | "DIR" | "FORMAT=FILE") {
        (Vec::new(), FILES)
    } else {
        (Vec::new(), NO_FILES)
    }
}

fn candidates(root: &Command, words: &[String]) -> (Vec<(String, String)>, u8) {
    let Some((current, before)) = words.split_last() else {
        return (Vec::new(), NO_FILES);
    };
    let globals: Vec<Arg> = root
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    let mut cmd = root;
    let mut pending: Option<&Arg> = None;
    let mut positionals = 0usize;
    let mut after_dashes = false;
    for w in before {
        if let Some(a) = pending.take() {
            let _ = a;
            continue;
        }
        if after_dashes {
            positionals += 1;
        } else if w == "--" {
            after_dashes = true;
        } else if let Some(name) = w.strip_prefix("--") {
            if !name.contains('=') {
                pending = long(cmd, &globals, name).filter(|a| takes_value(a));
            }
        } else if w.len() > 1 && w.starts_with('-') {
            // `-o` takes the next word; `-ojson` and `-vA` do not.
            let flags: Vec<char> = w[1..].chars().collect();
            if let [c] = flags.as_slice() {
                pending = short(cmd, &globals, *c).filter(|a| takes_value(a));
            }
        } else if let Some(sub) = cmd
            .get_subcommands()
            .find(|s| s.get_name() == w && positionals == 0)
        {
            cmd = sub;
        } else {
            positionals += 1;
        }
    }
    let filter = |list: Vec<(String, String)>, prefix: &str| -> Vec<(String, String)> {
        list.into_iter()
            .filter(|(w, _)| w.starts_with(prefix))
            .collect()
    };
    if let Some(arg) = pending {
        let (v, directive) = values(arg);
        return (filter(v, current), directive);
    }
    if let Some((name, value)) = current.strip_prefix("--").and_then(|c| c.split_once('=')) {
        let Some(arg) = long(cmd, &globals, name) else {
            return (Vec::new(), NO_FILES);
        };
        let (v, directive) = values(arg);
        let v = v
            .into_iter()
            .map(|(w, h)| (format!("--{name}={w}"), h))
            .collect();
        return (filter(v, &format!("--{name}={value}")), directive);
    }
    if current.starts_with('-') && !after_dashes {
        let mut flags: Vec<(String, String)> = cmd
            .get_arguments()
            .chain(&globals)
            .filter(|a| !a.is_hide_set() && !a.is_positional())
            .filter_map(|a| {
                a.get_long()
                    .map(|l| (format!("--{l}"), first_line(a.get_help())))
            })
            .collect();
        flags.push(("--help".into(), "Print help".into()));
        flags.dedup_by(|a, b| a.0 == b.0);
        return (filter(flags, current), NO_FILES);
    }
    let subs: Vec<(String, String)> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| (s.get_name().to_string(), first_line(s.get_about())))
        .collect();
    if !subs.is_empty() && positionals == 0 {
        return (filter(subs, current), NO_FILES);
    }
    // A positional: explain's check id, or a path.
    match cmd.get_positionals().nth(positionals) {
        Some(arg) => {
            let (v, directive) = values(arg);
            (filter(v, current), directive)
        }
        None => (Vec::new(), NO_FILES),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        let mut w: Vec<String> = line.split(' ').map(String::from).collect();
        if w == [""] {
            w.clear();
            w.push(String::new());
        }
        w
    }

    fn offered(line: &str) -> (Vec<String>, u8) {
        let (c, d) = candidates(&super::super::shell::visible_command(), &words(line));
        (c.into_iter().map(|(w, _)| w).collect(), d)
    }

    #[test]
    fn subcommands_flags_values_and_check_ids() {
        let (subs, d) = offered("");
        assert!(subs.contains(&"check".into()) && subs.contains(&"explain".into()));
        assert!(!subs.iter().any(|s| s == "gen-man" || s == "gen-docs"));
        assert_eq!(d, NO_FILES);
        assert_eq!(offered("ch").0, vec!["check".to_string()]);
        let (flags, _) = offered("check --d");
        assert_eq!(flags, vec!["--database-url".to_string()]);
        let (formats, _) = offered("check -o ");
        assert_eq!(formats, ["text", "json", "junit", "sarif", "prometheus"]);
        assert_eq!(
            offered("check --output=j").0,
            ["--output=json", "--output=junit"]
        );
        assert_eq!(offered("check --color ").0, ["auto", "always", "never"]);
        assert!(
            offered("check --only db.")
                .0
                .contains(&"db.password".into())
        );
        assert!(
            offered("explain tenant")
                .0
                .contains(&"tenant.exists".into())
        );
        assert_eq!(offered("check --kubeconfig ").1, FILES);
        // A flag's value is not taken for a subcommand.
        assert!(
            offered("check --release check --")
                .0
                .contains(&"--namespace".into())
        );
    }
}

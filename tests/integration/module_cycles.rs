//! The layering check: no two sibling modules of `src/` use each other, and no three or
//! more use each other in a circle (STYLE.md: values flow one way; issue 23: no import
//! circles). It reads the sources, not the compiled crate: every `use crate::...`,
//! `use super::...` and inline `crate::`/`super::` path of product code (items under a
//! cfg that names `test` are left out) becomes an edge between the two siblings under the
//! modules' nearest common parent, followed through `pub use` re-exports. A failure names
//! the modules and a line of each edge. A pair kept on purpose is in [`KEPT`], with why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Two-way dependencies kept on purpose, as (parent, a, b, why) with a < b. An entry that
/// no longer matches a two-way pair fails the test too, so that the list stays true.
const KEPT: &[(&str, &str, &str, &str)] = &[(
    "crate",
    "cli",
    "commands",
    "the verbs run what cli parses (clap's derive pattern), and cli's arguments name \
     commands::complete's candidate functions, which choose the app as the verbs do \
     (AppChoice) and ask the platform as `ps` does: moving those out of commands would \
     split the verbs' own logic to satisfy this check",
)];

type ModPath = Vec<String>;

/// One source file's module and what it says.
struct Source {
    module: ModPath,
    file: PathBuf,
    /// The text with comments, strings and test-only items blanked, same byte offsets.
    code: String,
}

/// `a` uses `b`, with where it says so.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub parent: String,
    pub from: String,
    pub to: String,
}

/// Every edge between siblings under `src`, with the first place it is written.
pub fn edges(src: &Path) -> BTreeMap<Edge, String> {
    let sources = read_tree(src);
    let modules: BTreeSet<ModPath> = sources.iter().map(|s| s.module.clone()).collect();
    let exports = re_exports(&sources, &modules);
    let mut edges: BTreeMap<Edge, String> = BTreeMap::new();
    for s in &sources {
        for (offset, path) in paths(s, &modules) {
            for target in resolve(path, &modules, &exports) {
                if let Some(edge) = sibling_edge(&s.module, &target) {
                    let line = s.code[..offset].matches('\n').count() + 1;
                    edges
                        .entry(edge)
                        .or_insert_with(|| format!("{}:{}", s.file.display(), line));
                }
            }
        }
    }
    edges
}

/// Every two-way pair under `src`, as (parent, a, b, evidence a->b, evidence b->a).
pub fn two_way(src: &Path) -> Vec<(Edge, String, String)> {
    let edges = edges(src);
    let mut pairs = Vec::new();
    for (edge, at) in &edges {
        if edge.from < edge.to {
            let back = Edge {
                parent: edge.parent.clone(),
                from: edge.to.clone(),
                to: edge.from.clone(),
            };
            if let Some(back_at) = edges.get(&back) {
                pairs.push((edge.clone(), at.clone(), back_at.clone()));
            }
        }
    }
    pairs
}

fn read_tree(src: &Path) -> Vec<Source> {
    let mut files = Vec::new();
    collect_rs(src, &mut files);
    files.sort();
    let mut out = Vec::new();
    let mut test_files = BTreeSet::new();
    for file in files {
        let rel = file.strip_prefix(src).expect("under src").to_path_buf();
        let mut module: ModPath = rel
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        match module.last().map(String::as_str) {
            Some("mod") | Some("lib") => {
                module.pop();
            }
            Some("main") if module.len() == 1 => continue,
            _ => {}
        }
        let text = std::fs::read_to_string(&file).expect("read a source file");
        let plain = blank_comments_and_strings(&text);
        // A file module declared `#[cfg(test)] mod x;` is test code: left out below.
        for name in test_mod_declarations(&plain) {
            let mut m = module.clone();
            m.push(name);
            test_files.insert(m);
        }
        out.push(Source {
            module,
            file: rel,
            code: blank_tests(&plain),
        });
    }
    out.retain(|s| !test_files.contains(&s.module));
    out
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Comments, string and char literals become spaces (newlines kept), so that a word in
/// them is not read as a path and offsets still give line numbers.
fn blank_comments_and_strings(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            let end = b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            let mut j = i;
            while j < b.len() {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if b[i] == b'r'
            && (i == 0 || !is_ident(b[i - 1]))
            && matches!(b.get(i + 1), Some(b'"') | Some(b'#'))
        {
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            if b.get(i + 1 + hashes) != Some(&b'"') {
                i += 1;
                continue;
            }
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            let start = i + 2 + hashes;
            let end = b[start..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |p| start + p + close.len());
            blank(&mut out, i, end);
            i = end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', 'é'), not a lifetime ('a).
            let end = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..].iter().position(|&c| c == b'\'').map(|p| i + 3 + p)
            } else {
                let len = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + len) == Some(&b'\'')).then_some(i + 2 + len)
            };
            match end {
                Some(end) => {
                    blank(&mut out, i, end);
                    i = end;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Is this attribute's cfg about tests (`cfg(test)`, `cfg(any(test, ...))`)?
fn test_attr_at(code: &str, at: usize) -> Option<usize> {
    let rest = &code[at..];
    if !rest.starts_with("#[cfg") {
        return None;
    }
    let end = rest.find(']')?;
    let inner = &rest[..end];
    let mentions_test = inner
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .any(|w| w == "test");
    mentions_test.then_some(at + end + 1)
}

/// Items under a test cfg become spaces: the attribute through the item's `;` or its
/// matching `}`, whichever comes first.
fn blank_tests(code: &str) -> String {
    let mut out = code.as_bytes().to_vec();
    let b = code.as_bytes();
    let mut i = 0;
    while let Some(p) = code[i..].find("#[cfg") {
        let at = i + p;
        let Some(after) = test_attr_at(code, at) else {
            i = at + 1;
            continue;
        };
        let mut j = after;
        let mut depth = 0usize;
        while j < b.len() {
            match b[j] {
                b'{' => depth += 1,
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        j += 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    j += 1;
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        for c in &mut out[at..j.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        i = j.min(b.len());
        if i >= code.len() {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Names of `#[cfg(test)] mod x;` declarations.
fn test_mod_declarations(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut i = 0;
    while let Some(p) = code[i..].find("#[cfg") {
        let at = i + p;
        i = at + 1;
        let Some(after) = test_attr_at(code, at) else {
            continue;
        };
        let rest = code[after..].trim_start();
        let rest = rest.strip_prefix("pub ").unwrap_or(rest);
        if let Some(decl) = rest.strip_prefix("mod ") {
            let name: String = decl
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let after_name = decl.trim_start()[name.len()..].trim_start();
            if after_name.starts_with(';') {
                names.push(name);
            }
        }
    }
    names
}

/// One flattened `use` path: where it is written, its segments, the name it binds.
struct UsePath {
    at: usize,
    segments: Vec<String>,
    binds: Option<String>,
    public: bool,
}

/// Every `use` declaration of a source, its tree flattened into paths.
fn use_paths(code: &str) -> Vec<UsePath> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    for (at, _) in code.match_indices("use") {
        let boundary_before = at == 0 || !is_ident(b[at - 1]);
        let boundary_after = b.get(at + 3).is_some_and(|c| c.is_ascii_whitespace());
        if !boundary_before || !boundary_after {
            continue;
        }
        let Some(end) = code[at..].find(';') else {
            continue;
        };
        let before = code[..at].trim_end();
        let public = before.ends_with("pub")
            || (before.ends_with(')') && {
                let open = before.rfind("pub(").unwrap_or(0);
                before[open..].starts_with("pub(") && !before[open..].contains('\n')
            });
        let tokens = tokenize(&code[at + 3..at + end]);
        let mut pos = 0;
        let mut flat = Vec::new();
        parse_tree(&tokens, &mut pos, &[], &mut flat);
        for (segments, binds) in flat {
            out.push(UsePath {
                at,
                segments,
                binds,
                public,
            });
        }
    }
    out
}

fn tokenize(s: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_alphanumeric() || d == '_' {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(s[i..end].to_string());
        } else if c == ':' {
            if chars.peek().is_some_and(|&(_, d)| d == ':') {
                chars.next();
            }
            tokens.push("::".to_string());
        } else {
            tokens.push(c.to_string());
        }
    }
    tokens
}

/// `a::{b, c::{self, d as e}}` into `a::b`, `a::c` (binds c), `a::c::d` (binds e).
fn parse_tree(
    tokens: &[String],
    pos: &mut usize,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut path = prefix.to_vec();
    while *pos < tokens.len() {
        let t = tokens[*pos].as_str();
        match t {
            "::" => *pos += 1,
            "{" => {
                *pos += 1;
                loop {
                    parse_tree(tokens, pos, &path, out);
                    match tokens.get(*pos).map(String::as_str) {
                        Some(",") => *pos += 1,
                        Some("}") => {
                            *pos += 1;
                            return;
                        }
                        _ => return,
                    }
                    if tokens.get(*pos).map(String::as_str) == Some("}") {
                        *pos += 1;
                        return;
                    }
                }
            }
            "}" | "," => break,
            "*" => {
                *pos += 1;
                out.push((path, None));
                return;
            }
            "as" => {
                *pos += 1;
                let alias = tokens.get(*pos).cloned();
                *pos += 1;
                out.push((path, alias));
                return;
            }
            "self" if !path.is_empty() => *pos += 1,
            _ => {
                path.push(t.to_string());
                *pos += 1;
            }
        }
    }
    let binds = path.last().cloned();
    out.push((path, binds));
}

/// A written path made absolute from `module`, or None for another crate's path.
fn absolute(module: &ModPath, segments: &[String], modules: &BTreeSet<ModPath>) -> Option<ModPath> {
    let first = segments.first()?;
    let mut base: ModPath = match first.as_str() {
        "crate" => Vec::new(),
        "self" => module.clone(),
        "super" => {
            let mut m = module.clone();
            let mut rest = segments;
            while rest.first().map(String::as_str) == Some("super") {
                m.pop();
                rest = &rest[1..];
            }
            m.extend(rest.iter().cloned());
            return Some(m);
        }
        _ => {
            // A 2018-edition path from the current module's child.
            let mut child = module.clone();
            child.push(first.clone());
            if !modules.contains(&child) {
                return None;
            }
            module.clone()
        }
    };
    let skip = usize::from(matches!(first.as_str(), "crate" | "self"));
    base.extend(segments[skip..].iter().cloned());
    Some(base)
}

/// (module, name) -> the absolute path a `pub use` in that module binds to that name.
type Exports = BTreeMap<(ModPath, String), ModPath>;

fn re_exports(sources: &[Source], modules: &BTreeSet<ModPath>) -> Exports {
    let mut exports = Exports::new();
    for s in sources {
        for u in use_paths(&s.code) {
            if !u.public {
                continue;
            }
            let (Some(name), Some(abs)) = (u.binds, absolute(&s.module, &u.segments, modules)) else {
                continue;
            };
            exports.insert((s.module.clone(), name), abs);
        }
    }
    exports
}

/// The modules a path goes through: the one it names, and through each `pub use` the one
/// that defines it.
fn resolve(mut path: ModPath, modules: &BTreeSet<ModPath>, exports: &Exports) -> Vec<ModPath> {
    let mut through = Vec::new();
    for _ in 0..16 {
        let Some(k) = (0..=path.len())
            .rev()
            .find(|&k| modules.contains(&path[..k].to_vec()))
        else {
            break;
        };
        let module = path[..k].to_vec();
        through.push(module.clone());
        let Some(next) = path.get(k) else { break };
        let Some(target) = exports.get(&(module, next.clone())) else {
            break;
        };
        let mut followed = target.clone();
        followed.extend(path[k + 1..].iter().cloned());
        path = followed;
    }
    through
}

/// Every path of a source to another module of the crate, with where it is written.
fn paths(s: &Source, modules: &BTreeSet<ModPath>) -> Vec<(usize, ModPath)> {
    let mut out = Vec::new();
    // Names bound by `use` to modules of the crate (`use crate::ui;` then `ui::x`).
    let mut aliases: BTreeMap<String, ModPath> = BTreeMap::new();
    for u in use_paths(&s.code) {
        if let Some(abs) = absolute(&s.module, &u.segments, modules) {
            if let Some(name) = &u.binds {
                if modules.contains(&abs) {
                    aliases.insert(name.clone(), abs.clone());
                }
            }
            out.push((u.at, abs));
        }
    }
    // Paths written inline: `crate::a::b`, `super::b`, `alias::b`.
    let b = s.code.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !is_ident(b[i]) || (i > 0 && (is_ident(b[i - 1]) || b[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let start = i;
        let mut segments = Vec::new();
        loop {
            let from = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            segments.push(s.code[from..i].to_string());
            if s.code[i..].starts_with("::") && b.get(i + 2).is_some_and(|&c| is_ident(c)) {
                i += 2;
            } else {
                break;
            }
        }
        if segments.len() < 2 {
            continue;
        }
        let abs = match segments[0].as_str() {
            "crate" | "super" | "self" => absolute(&s.module, &segments, modules),
            name => aliases.get(name).map(|m| {
                let mut p = m.clone();
                p.extend(segments[1..].iter().cloned());
                p
            }),
        };
        if let Some(abs) = abs {
            out.push((start, abs));
        }
    }
    out
}

/// `from` uses `to`: the edge between their sides under their nearest common parent, or
/// None when one contains the other.
fn sibling_edge(from: &ModPath, to: &ModPath) -> Option<Edge> {
    let k = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    let (a, b) = (from.get(k)?, to.get(k)?);
    Some(Edge {
        parent: if k == 0 {
            "crate".to_string()
        } else {
            from[..k].join("::")
        },
        from: a.clone(),
        to: b.clone(),
    })
}

#[test]
fn no_two_sibling_modules_use_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = two_way(&src);
    let mut report = String::new();
    for (parent, a, b, _) in KEPT {
        if !found
            .iter()
            .any(|(e, _, _)| e.parent == *parent && e.from == *a && e.to == *b)
        {
            report.push_str(&format!(
                "{parent}: {a} <-> {b} is kept in KEPT but they no longer use each other: \
                 take it out of KEPT\n"
            ));
        }
    }
    for (edge, there, back) in &found {
        let kept = KEPT
            .iter()
            .any(|(p, a, b, _)| *p == edge.parent && *a == edge.from && *b == edge.to);
        if !kept {
            report.push_str(&format!(
                "{}: {} <-> {} ({} uses {} at {}; {} uses {} at {})\n",
                edge.parent, edge.from, edge.to, edge.from, edge.to, there, edge.to, edge.from, back
            ));
        }
    }
    assert!(
        report.is_empty(),
        "two-way module dependencies (move the shared item to a leaf module both can use, \
         or keep the pair in KEPT with why):\n{report}"
    );
}

/// Groups of three or more siblings that reach each other through their edges (a longer
/// circle: a uses b, b uses c, c uses a), each with its edges and where they are written.
pub fn circles(src: &Path) -> Vec<(String, BTreeSet<String>, Vec<String>)> {
    let edges = edges(src);
    let mut by_parent: BTreeMap<&str, BTreeMap<&str, BTreeSet<&str>>> = BTreeMap::new();
    for e in edges.keys() {
        by_parent
            .entry(&e.parent)
            .or_default()
            .entry(&e.from)
            .or_default()
            .insert(&e.to);
    }
    let mut found = Vec::new();
    for (parent, graph) in &by_parent {
        let reach = |from: &str| {
            let mut seen = BTreeSet::new();
            let mut todo = vec![from];
            while let Some(n) = todo.pop() {
                for &m in graph.get(n).into_iter().flatten() {
                    if seen.insert(m) {
                        todo.push(m);
                    }
                }
            }
            seen
        };
        let mut placed = BTreeSet::new();
        for &n in graph.keys() {
            if placed.contains(n) || !reach(n).contains(n) {
                continue;
            }
            let group: BTreeSet<String> = reach(n)
                .into_iter()
                .filter(|m| reach(m).contains(n))
                .map(String::from)
                .collect();
            placed.extend(group.iter().cloned());
            if group.len() >= 3 {
                let inside: Vec<String> = edges
                    .iter()
                    .filter(|(e, _)| e.parent == *parent && group.contains(&e.from) && group.contains(&e.to))
                    .map(|(e, at)| format!("{} uses {} at {}", e.from, e.to, at))
                    .collect();
                found.push((parent.to_string(), group, inside));
            }
        }
    }
    found
}

#[test]
fn no_circle_of_three_or_more_sibling_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let report: Vec<String> = circles(&src)
        .into_iter()
        .map(|(parent, group, inside)| {
            let names: Vec<String> = group.into_iter().collect();
            format!("{parent}: {} ({})", names.join(", "), inside.join("; "))
        })
        .collect();
    assert!(
        report.is_empty(),
        "modules that use each other in a circle (one of these edges is incidental: move \
         its item to a module below them all):\n{}",
        report.join("\n")
    );
}

#[test]
fn a_planted_cycle_is_found() {
    // The check must be able to fail: two sibling files that use each other.
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("platform")).expect("mkdir");
    std::fs::write(src.join("lib.rs"), "pub mod platform;\npub mod ui;\n").expect("write");
    std::fs::write(
        src.join("ui.rs"),
        "//! crate::platform in a comment is no use.\npub fn f() { let _ = \"crate::platform\"; }\n\
         #[cfg(test)]\nmod tests { use crate::platform::x; }\n",
    )
    .expect("write");
    std::fs::write(
        src.join("platform/mod.rs"),
        "mod a;\nmod b;\n#[cfg(test)]\nmod tests;\n",
    )
    .expect("write");
    std::fs::write(src.join("platform/tests.rs"), "use super::a::X;\n").expect("write");
    std::fs::write(
        src.join("platform/a.rs"),
        "use super::{b::{self, Y}, Z};\npub struct X;\n",
    )
    .expect("write");
    std::fs::write(
        src.join("platform/b.rs"),
        "pub fn g() -> super::a::X { crate::ui::f(); super::a::X }\n",
    )
    .expect("write");
    let found = two_way(src);
    let names: Vec<String> = found
        .iter()
        .map(|(e, _, _)| format!("{}: {} <-> {}", e.parent, e.from, e.to))
        .collect();
    assert_eq!(names, vec!["platform: a <-> b".to_string()], "{found:?}");
    // A longer circle under the root: ui -> state -> stack -> ui.
    std::fs::write(
        src.join("lib.rs"),
        "pub mod platform;\npub mod stack;\npub mod state;\npub mod ui;\n",
    )
    .expect("write");
    std::fs::write(src.join("ui.rs"), "use crate::state::Home;\n").expect("write");
    std::fs::write(src.join("state.rs"), "fn f() { crate::stack::g() }\n").expect("write");
    std::fs::write(
        src.join("stack.rs"),
        "pub(crate) use crate::ui as out;\nfn g() { out::f() }\n",
    )
    .expect("write");
    let circles = circles(src);
    assert_eq!(circles.len(), 1, "{circles:?}");
    let (parent, group, _) = &circles[0];
    assert_eq!(parent, "crate");
    assert_eq!(group.iter().collect::<Vec<_>>(), ["stack", "state", "ui"]);
    // platform uses ui, but ui's only use of platform is in a comment, a string and a test.
}

//! The layout is the architecture: this test reads the library's sources and fails when a
//! module imports against the plan (see `docs/architecture.md`):
//! - the core never imports the host ABIs (`ffi`), and the OS shims (`sys`) import nothing
//!   of the crate;
//! - no two modules import each other through any chain, and neither do the parts (the
//!   top-level folders and files: `line`, `names`, `writer`, `shared`, `sys`, `ffi`, ...);
//! - the same for the command line (`cli/src`), whose commands (`commands::cat`,
//!   `commands::cdr`, ...) never import each other;
//! - the host modules (the crates under `hosts/`) reach the library only through its host
//!   toolkit `flatstore::ffi` and the few public items listed in [`HOST_REACH`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Module path (`writer::buffer`) → the modules its code refers to.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// `src/writer/buffer.rs` → `writer::buffer`; `src/line/mod.rs` → `line`; `src/lib.rs` (and
/// `cli/src/main.rs`) → ``.
fn module_of(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts.join("::")
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "bin") {
                sources(&path, root, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).expect("under src");
            let text = fs::read_to_string(&path).expect("read source");
            out.push((module_of(relative), text));
        }
    }
}

/// The code of a file without comments and without its unit tests (which may reach anywhere).
fn code(text: &str) -> String {
    let body = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    body.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b` and `super::x` path in `code`, as the module it names: the longest
/// prefix that is a known module.
fn references(module: &str, code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    let mut paths: Vec<String> = Vec::new();
    for (start, _) in code.match_indices("crate::") {
        paths.push(path_at(&code[start + "crate::".len()..]));
    }
    for (start, _) in code.match_indices("super::") {
        let rest = path_at(&code[start + "super::".len()..]);
        paths.push(if parent.is_empty() {
            rest
        } else {
            format!("{parent}::{rest}")
        });
    }
    // `use crate::{a, b::c}` and `use super::{...}`: each item of the group.
    for group in ["crate::{", "super::{"] {
        for (start, _) in code.match_indices(group) {
            let inner = &code[start + group.len()..];
            let inner = &inner[..inner.find('}').unwrap_or(inner.len())];
            for item in inner.split(',') {
                let item = path_at(item.trim());
                paths.push(match (group, parent) {
                    ("super::{", p) if !p.is_empty() => format!("{p}::{item}"),
                    _ => item,
                });
            }
        }
    }
    for path in paths {
        let mut candidate = path.as_str();
        loop {
            if modules.contains(candidate) {
                if candidate != module {
                    found.insert(candidate.to_owned());
                }
                break;
            }
            match candidate.rsplit_once("::") {
                Some((shorter, _)) => candidate = shorter,
                None => {
                    // An item of the crate root (a re-export in lib.rs).
                    if !module.is_empty() {
                        found.insert(String::new());
                    }
                    break;
                }
            }
        }
    }
    found
}

/// The leading `a::b::c` of `text`.
fn path_at(text: &str) -> String {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    text[..end].trim_end_matches(':').to_owned()
}

/// The import graph of the library's sources.
fn graph() -> Graph {
    graph_of("src")
}

/// The import graph of the crate whose sources are in `dir` (from the workspace root).
fn graph_of(dir: &str) -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    files
        .iter()
        .map(|(module, text)| (module.clone(), references(module, &code(text), &modules)))
        .collect()
}

/// The part a module belongs to: its first path segment.
fn part(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

/// A cycle through `start` in `graph`, if there is one.
fn cycle_from(graph: &Graph, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_owned());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

fn cycles(graph: &Graph) -> Vec<String> {
    graph
        .keys()
        .filter_map(|m| cycle_from(graph, m))
        .map(|c| c.join(" -> "))
        .collect()
}

/// The graph without the crate root, which only declares the parts and re-exports.
fn without_root(graph: &Graph) -> Graph {
    graph
        .iter()
        .filter(|(m, _)| !m.is_empty())
        .map(|(m, refs)| {
            let refs = refs.iter().filter(|r| !r.is_empty()).cloned().collect();
            (m.clone(), refs)
        })
        .collect()
}

#[test]
fn the_core_never_imports_the_host_abis_and_sys_imports_nothing() {
    let graph = graph();
    assert!(graph.contains_key("writer::connection") && graph.contains_key("ffi::openser"));
    for (module, refs) in &graph {
        if part(module) != "ffi" && !module.is_empty() {
            let wrong: Vec<_> = refs.iter().filter(|r| part(r) == "ffi").collect();
            assert!(
                wrong.is_empty(),
                "{module} imports the host ABIs: {wrong:?}"
            );
        }
        if part(module) == "sys" {
            let wrong: Vec<_> = refs.iter().filter(|r| part(r) != "sys").collect();
            assert!(wrong.is_empty(), "{module} (an OS shim) imports {wrong:?}");
        }
    }
}

#[test]
fn no_module_and_no_part_imports_itself_through_a_chain() {
    let modules = without_root(&graph());
    assert_eq!(
        cycles(&modules),
        Vec::<String>::new(),
        "module import circles"
    );
    let mut parts = Graph::new();
    for (module, refs) in &modules {
        let entry = parts.entry(part(module).to_owned()).or_default();
        entry.extend(
            refs.iter()
                .map(|r| part(r).to_owned())
                .filter(|p| p != part(module)),
        );
    }
    assert_eq!(cycles(&parts), Vec::<String>::new(), "part import circles");
}

/// The command a module of the command line belongs to (`commands::cdr` for
/// `commands::cdr::output`), if it is one's.
fn command(module: &str) -> Option<String> {
    let mut segments = module.split("::");
    match (segments.next(), segments.next()) {
        (Some("commands"), Some(command)) => Some(format!("commands::{command}")),
        _ => None,
    }
}

/// Every import of one command by another, as `importer -> imported`.
fn commands_importing_each_other(graph: &Graph) -> Vec<String> {
    let mut wrong = Vec::new();
    for (module, refs) in graph {
        let Some(own) = command(module) else {
            continue;
        };
        for r in refs {
            if command(r).is_some_and(|other| other != own) {
                wrong.push(format!("{module} -> {r}"));
            }
        }
    }
    wrong
}

#[test]
fn the_command_line_has_no_circles_and_its_commands_never_import_each_other() {
    let graph = graph_of("cli/src");
    assert!(graph.contains_key("commands::cat") && graph.contains_key("listing"));
    let modules = without_root(&graph);
    assert_eq!(
        cycles(&modules),
        Vec::<String>::new(),
        "command line module import circles"
    );
    assert_eq!(
        commands_importing_each_other(&modules),
        Vec::<String>::new(),
        "commands importing each other"
    );
}

/// What a host module may name of the library: its toolkit, the error, the value, the report.
const HOST_REACH: [&str; 5] = ["ffi", "report", "Error", "Result", "Value"];

/// The first segment of every `flatstore::…` path in `code` (groups `flatstore::{a, b}` too).
fn library_items(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (start, _) in code.match_indices("flatstore::") {
        let rest = &code[start + "flatstore::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            found.extend(group.split(',').map(|item| path_at(item.trim())));
        } else {
            found.insert(path_at(rest));
        }
    }
    found
        .into_iter()
        .map(|p| p.split("::").next().unwrap_or_default().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

#[test]
fn host_modules_reach_the_library_only_through_its_toolkit() {
    let hosts = Path::new(env!("CARGO_MANIFEST_DIR")).join("hosts");
    let mut seen = 0;
    for host in fs::read_dir(&hosts).expect("read hosts/") {
        let host = host.expect("entry").path();
        // The crates; beside them, hosts/build_version.rs is included by their build scripts.
        if !host.join("Cargo.toml").exists() {
            continue;
        }
        let src = host.join("src");
        let mut files = Vec::new();
        sources(&src, &src, &mut files);
        for (module, text) in files {
            seen += 1;
            let wrong: Vec<String> = library_items(&code(&text))
                .into_iter()
                .filter(|item| !HOST_REACH.contains(&item.as_str()))
                .collect();
            assert!(
                wrong.is_empty(),
                "{} ({module}) names {wrong:?} of the library: only {HOST_REACH:?}",
                src.display()
            );
        }
    }
    assert!(seen > 0, "no host module under {}", hosts.display());
}

#[test]
fn the_checker_sees_a_circle_and_a_wrong_import() {
    let mut graph = Graph::new();
    graph.insert("a::x".into(), ["b::y".to_owned()].into());
    graph.insert("b::y".into(), ["a::x".to_owned()].into());
    assert_eq!(cycles(&graph).len(), 2);
    let modules: BTreeSet<String> = ["ffi".to_owned(), "writer::buffer".to_owned()].into();
    let refs = references("writer::buffer", "use crate::ffi::guard;", &modules);
    assert!(refs.contains("ffi"));
    let mut graph = Graph::new();
    graph.insert(
        "commands::cat".into(),
        ["commands::cdr::rows".to_owned()].into(),
    );
    graph.insert(
        "commands::cdr::rows".into(),
        ["commands::cdr".to_owned()].into(),
    );
    assert_eq!(
        commands_importing_each_other(&graph),
        ["commands::cat -> commands::cdr::rows"]
    );
    let items = library_items("use flatstore::{ffi::guard, writer::Buffer};\nflatstore::names::x");
    assert_eq!(items, ["ffi", "names", "writer"].map(String::from).into());
}

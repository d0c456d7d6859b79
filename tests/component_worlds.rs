//! The built components' worlds, read with `wasm-tools component wit`: imports must be
//! `wasi:*` only (so any WASI 0.2 host runs them), and each exports exactly its entry point.
//! runwasi picks how to run a component from its exports, so the server must not export the
//! HTTP handler.

mod common;

use common::{tool, Artefact};
use std::process::Command;

/// (imports, exports) as interface names, e.g. `wasi:io/poll@0.2.6`.
fn world_of(artefact: Artefact) -> (Vec<String>, Vec<String>) {
    world_of_file(&artefact.wasm())
}

fn world_of_file(wasm: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let output = Command::new(tool("WASM_TOOLS", "wasm-tools"))
        .args(["component", "wit"])
        .arg(wasm)
        .output()
        .expect("wasm-tools runs (scripts/test.sh installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let wit = String::from_utf8(output.stdout).unwrap();
    let items = |keyword: &str| -> Vec<String> {
        wit.lines()
            .filter_map(|line| line.trim().strip_prefix(keyword))
            .map(|rest| rest.trim_end_matches(';').to_string())
            .collect()
    };
    (items("import "), items("export "))
}

fn versionless(names: &[String]) -> Vec<&str> {
    names
        .iter()
        .map(|name| name.split('@').next().unwrap())
        .collect()
}

#[test]
fn both_components_import_nothing_but_wasi() {
    for artefact in Artefact::ALL {
        let (imports, _) = world_of(artefact);
        assert!(!imports.is_empty(), "{artefact:?}: no imports parsed");
        let foreign: Vec<_> = imports.iter().filter(|i| !i.starts_with("wasi:")).collect();
        assert!(foreign.is_empty(), "{artefact:?} imports {foreign:?}");
    }
}

#[test]
fn spin_component_exports_only_the_http_handler() {
    let (imports, exports) = world_of(Artefact::Spin);
    assert_eq!(versionless(&exports), ["wasi:http/incoming-handler"]);
    assert!(
        !versionless(&imports).contains(&"wasi:sockets/tcp"),
        "the Spin component needs no sockets"
    );
}

#[test]
fn server_component_is_a_command_with_sockets_and_no_http_handler() {
    let (imports, exports) = world_of(Artefact::Server);
    assert_eq!(versionless(&exports), ["wasi:cli/run"]);
    let imports = versionless(&imports);
    for needed in [
        "wasi:sockets/tcp",
        "wasi:filesystem/preopens",
        "wasi:cli/environment",
    ] {
        assert!(imports.contains(&needed), "server lacks {needed}");
    }
    assert!(
        !imports.contains(&"wasi:http/types"),
        "the server speaks HTTP itself"
    );
}

/// The Spin component's SQLite build (components/spin-sqlite) is the one artefact that imports
/// Spin's own interfaces, and only the two it needs; it is a build of its own so that
/// `spin_visits_http.wasm` above stays `wasi:*` only for `wasmtime serve`.
#[test]
fn the_sqlite_build_adds_exactly_spins_sqlite_and_variables() {
    common::build_components();
    let wasm = Artefact::Spin
        .wasm()
        .with_file_name("spin_visits_sqlite.wasm");
    let (imports, exports) = world_of_file(&wasm);
    let foreign: Vec<_> = imports.iter().filter(|i| !i.starts_with("wasi:")).collect();
    assert_eq!(
        foreign,
        ["fermyon:spin/sqlite@2.0.0", "fermyon:spin/variables@2.0.0"]
    );
    assert_eq!(versionless(&exports), ["wasi:http/incoming-handler"]);
}

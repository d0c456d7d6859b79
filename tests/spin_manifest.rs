//! `spin.toml` must describe what we build: there is no Spin CLI on CI machines, so this
//! keeps the manifest honest against the build and the component's configuration.

mod common;

use common::{repo_root, Artefact};

fn manifest() -> toml::Table {
    let text = std::fs::read_to_string(repo_root().join("spin.toml")).unwrap();
    text.parse().expect("spin.toml is valid TOML")
}

#[test]
fn one_trigger_routes_everything_to_the_component() {
    let manifest = manifest();
    assert_eq!(manifest["spin_manifest_version"].as_integer(), Some(2));
    let triggers = manifest["trigger"]["http"].as_array().unwrap();
    assert_eq!(triggers.len(), 1);
    assert_eq!(triggers[0]["route"].as_str(), Some("/..."));
    let component = triggers[0]["component"].as_str().unwrap();
    assert!(manifest["component"].get(component).is_some());
}

#[test]
fn component_points_at_the_built_artefact_with_a_data_mount_and_only_its_peers() {
    let manifest = manifest();
    let component = &manifest["component"]["visits"];
    let source = repo_root().join(component["source"].as_str().unwrap());
    assert_eq!(
        source,
        Artefact::Spin.wasm(),
        "source is what the build produces"
    );
    assert!(source.exists());

    let files = component["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["source"].as_str(), Some("data"));
    assert_eq!(files[0]["destination"].as_str(), Some("/data"));
    assert!(
        repo_root().join("data").is_dir(),
        "the mounted folder exists in a clone"
    );

    let env = component["environment"].as_table().unwrap();
    assert_eq!(env["DATA_DIR"].as_str(), Some("/data"));
    assert_eq!(env["POD_NAME"].as_str(), Some("local"));
    // Outbound calls go to the configured peers and nowhere else.
    let peers: Vec<String> = env["PEERS"]
        .as_str()
        .unwrap()
        .split(',')
        .map(|peer| format!("http://{peer}"))
        .collect();
    let allowed: Vec<&str> = component["allowed_outbound_hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|host| host.as_str().unwrap())
        .collect();
    assert_eq!(allowed, peers);

    let build = component["build"]["command"].as_str().unwrap();
    assert!(build.contains("--target wasm32-wasip2") && build.contains("-p spin-visits-http"));
}

//! docs/configuration.md against the config code: the settings the code asks the environment
//! for are exactly the table's rows, and each row's default is what the code uses.

use spin_visits::config::{Config, PeerService};
use spin_visits::server_config::ServerConfig;
use spin_visits::store::StoreChoice;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// Every name the config code looks up while reading an empty environment.
fn names_the_code_reads() -> BTreeSet<String> {
    let asked = RefCell::new(BTreeSet::new());
    let lookup = |name: &str| {
        asked.borrow_mut().insert(name.to_owned());
        None
    };
    let _ = Config::read(lookup);
    ServerConfig::from_lookup(lookup).expect("an empty environment is valid");
    PeerService::from_lookup(lookup).expect("an empty environment is valid");
    StoreChoice::from_lookup(lookup).expect("an empty environment is valid");
    asked.into_inner()
}

/// The table's rows: setting -> default column.
fn documented() -> BTreeMap<String, String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .unwrap();
    doc.lines()
        .filter_map(|line| {
            let mut cells = line.strip_prefix("| `")?.splitn(3, '|');
            let name = cells.next()?.trim().trim_end_matches('`');
            let default = cells.next()?.trim().trim_matches('`');
            name.chars()
                .all(|c| c.is_ascii_uppercase() || c == '_')
                .then(|| (name.to_owned(), default.to_owned()))
        })
        .collect()
}

#[test]
fn the_table_lists_exactly_the_settings_the_code_reads() {
    let code = names_the_code_reads();
    let docs: BTreeSet<String> = documented().into_keys().collect();
    assert!(code.len() > 10, "the lookup was asked for only {code:?}");
    assert_eq!(
        code.difference(&docs).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "read by the code, missing from docs/configuration.md"
    );
    assert_eq!(
        docs.difference(&code).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "in docs/configuration.md, never read by the code"
    );
}

#[test]
fn each_documented_default_is_the_codes() {
    let empty = ServerConfig::from_lookup(|_| None).unwrap();
    for (name, default) in documented() {
        // "(none)", "(none: keep all)", "5% of VOLUME_CAPACITY": described, not a literal.
        if default.starts_with('(') || default.contains(' ') {
            continue;
        }
        // Setting the documented default explicitly must give the same config as leaving it
        // unset.
        let explicit = ServerConfig::from_lookup(|asked| (asked == name).then(|| default.clone()))
            .unwrap_or_else(|err| panic!("{name}'s documented default {default:?}: {err}"));
        assert_eq!(
            format!("{explicit:?}"),
            format!("{empty:?}"),
            "{name}'s documented default {default:?} is not the code's"
        );
    }
}

//! Another server on the same data directory: `spin_visits::presence` beats every
//! [`BEAT`](spin_visits::presence::BEAT) from its own task; while another server's beat is
//! fresh, `/readyz` fails naming it, and each change is one log line. A drain leaves (removes
//! this server's file) before the process exits.

use spin_visits::presence::{Presence, BEAT};
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;

pub struct Watch {
    presence: Presence,
    dir: PathBuf,
    /// What the other servers' files said at the last beat.
    others: RefCell<Vec<String>>,
    /// The last beat's error, so that a volume that stays read-only is said once.
    failed: RefCell<Option<String>>,
    /// Set by [`Watch::leave`]: no more beats rewrite the file.
    left: Cell<bool>,
}

impl Watch {
    /// `about` names this server in the other's log line and `/readyz` (pod and address).
    pub fn new(dir: &Path, about: &str) -> Rc<Self> {
        Rc::new(Self {
            presence: Presence::new(dir, about),
            dir: dir.to_owned(),
            others: RefCell::default(),
            failed: RefCell::default(),
            left: Cell::new(false),
        })
    }

    /// Beats now, then every `BEAT` until the server leaves.
    pub async fn run(self: Rc<Self>) {
        while !self.left.get() {
            self.beat();
            wstd::task::sleep(BEAT.into()).await;
        }
    }

    fn beat(&self) {
        if self.left.get() {
            return;
        }
        let dir = self.dir.display();
        match self.presence.beat() {
            Ok(others) => {
                if self.failed.take().is_some() {
                    eprintln!("spin-visits-server: presence file in {dir} written again");
                }
                let mut seen = self.others.borrow_mut();
                if others != *seen {
                    match others.is_empty() {
                        true => eprintln!(
                            "spin-visits-server: no other server writes {dir} any more: ready again"
                        ),
                        false => eprintln!(
                            "spin-visits-server: another server writes {dir}: {}; /readyz fails until it stops",
                            others.join(", ")
                        ),
                    }
                    *seen = others;
                }
            }
            Err(err) => {
                let said = err.to_string();
                let mut failed = self.failed.borrow_mut();
                if failed.as_deref() != Some(&said) {
                    eprintln!(
                        "spin-visits-server: cannot write the presence file in {dir} ({said}): another server there goes unseen"
                    );
                    *failed = Some(said);
                }
            }
        }
    }

    /// Why this replica should not get traffic: another server writes its directory.
    pub fn unready_reason(&self) -> Option<String> {
        let others = self.others.borrow();
        (!others.is_empty()).then(|| {
            format!(
                "another server writes {}: {}; two servers on one log double its counts",
                self.dir.display(),
                others.join(", ")
            )
        })
    }

    /// Stops beating and removes this server's file (a drain, before the exit).
    pub fn leave(&self) {
        self.left.set(true);
        self.presence.leave();
    }
}

//! Requests being answered, counted for the drain: from a head's arrival until its answer's
//! body is done (or the request is dropped).

use std::cell::Cell;
use std::rc::Rc;

#[derive(Clone, Default)]
pub struct Requests(Rc<Cell<usize>>);

/// One request in flight; dropping it ends it.
pub struct InFlight(Requests);

impl Requests {
    pub fn start(&self) -> InFlight {
        self.0.set(self.0.get() + 1);
        InFlight(self.clone())
    }

    pub fn in_flight(&self) -> usize {
        self.0.get()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let count = &(self.0).0;
        count.set(count.get() - 1);
    }
}

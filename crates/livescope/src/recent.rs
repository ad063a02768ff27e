//! A map of broadcasts to what the server keeps about them while it runs (verdicts, delay
//! stages), bounded to the most recently added: the oldest goes when a new one comes.

use std::collections::{HashMap, VecDeque};

pub struct Recent<V> {
    map: HashMap<String, V>,
    /// Keys, oldest first.
    order: VecDeque<String>,
    keep: usize,
}

impl<V> Recent<V> {
    pub fn new(keep: usize) -> Recent<V> {
        Recent {
            map: HashMap::new(),
            order: VecDeque::new(),
            keep: keep.max(1),
        }
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key)
    }

    /// The value of `key`, made by `make` (and the oldest key let go) if it is new.
    pub fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> V) -> &mut V {
        if !self.map.contains_key(key) {
            if self.order.len() >= self.keep
                && let Some(oldest) = self.order.pop_front()
            {
                self.map.remove(&oldest);
            }
            self.order.push_back(key.to_owned());
            self.map.insert(key.to_owned(), make());
        }
        self.map.get_mut(key).expect("just inserted")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_goes_when_full() {
        let mut r = Recent::new(2);
        *r.get_or_insert_with("a", || 1) += 10;
        r.get_or_insert_with("b", || 2);
        assert_eq!(r.get("a"), Some(&11));
        r.get_or_insert_with("c", || 3);
        assert_eq!((r.get("a"), r.get("b"), r.get("c")), (None, Some(&2), Some(&3)));
    }
}

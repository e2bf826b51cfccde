//! A small least-recently-used map for the connections to endpoint locations: a server that
//! names a new host for every endpoint must not make the client hold a connection to each.

/// At most `capacity` entries, most recently used last. A linear scan is the right cost for
/// the handful of locations a result names.
pub(crate) struct LruCache<V> {
    capacity: usize,
    entries: Vec<(String, V)>,
}

impl<V: Clone> LruCache<V> {
    /// An empty cache holding at most `capacity` (at least 1) entries.
    pub(crate) fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), entries: Vec::new() }
    }

    /// The value under `key`, now the most recently used.
    pub(crate) fn get(&mut self, key: &str) -> Option<V> {
        let position = self.entries.iter().position(|(k, _)| k == key)?;
        let entry = self.entries.remove(position);
        let value = entry.1.clone();
        self.entries.push(entry);
        Some(value)
    }

    /// Stores `value` under `key` as the most recently used, dropping the least recently used
    /// entry when the cache is full.
    pub(crate) fn insert(&mut self, key: String, value: V) {
        self.entries.retain(|(k, _)| *k != key);
        if self.entries.len() >= self.capacity {
            self.entries.remove(0);
        }
        self.entries.push((key, value));
    }

    /// The keys, least recently used first.
    #[cfg(test)]
    fn keys(&self) -> Vec<&str> {
        self.entries.iter().map(|(k, _)| k.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let mut cache = LruCache::new(2);
        cache.insert("a".into(), 1);
        cache.insert("b".into(), 2);
        assert_eq!(cache.get("a"), Some(1));
        cache.insert("c".into(), 3);
        assert_eq!(cache.keys(), ["a", "c"]);
        assert_eq!(cache.get("b"), None);
        cache.insert("c".into(), 4);
        assert_eq!(cache.keys(), ["a", "c"]);
        assert_eq!(cache.get("c"), Some(4));
        cache.insert("d".into(), 5);
        assert_eq!(cache.keys(), ["c", "d"]);
    }

    #[test]
    fn a_zero_capacity_still_holds_one_entry() {
        let mut cache = LruCache::new(0);
        cache.insert("a".into(), 1);
        assert_eq!(cache.get("a"), Some(1));
        cache.insert("b".into(), 2);
        assert_eq!(cache.keys(), ["b"]);
    }
}

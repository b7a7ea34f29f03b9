//! Slab arenas with generational keys, the handles of the worker's hot path (quinn's
//! `ConnectionHandle` is such a slab index): transports, routers, producers and consumers
//! are named by a [`TransportKey`], [`RouterKey`], [`ProducerKey`] or [`ConsumerKey`], an
//! index into a `Vec` checked by a generation, never by the UUIDs the control plane uses.
//! Those exist only at the engine's edge (commands and events) and in the maps that
//! translate them.
//!
//! A key outlives its value safely: once the value is removed, its slot's generation
//! moves on and the old key finds nothing, even after the slot is reused.

use std::marker::PhantomData;

/// A typed handle into an [`Arena`].
pub trait Key: Copy + Eq + std::hash::Hash + std::fmt::Debug {
    /// The key of slot `index` at `generation`.
    fn new(index: u32, generation: u32) -> Self;
    /// The slot.
    fn index(self) -> usize;
    /// The generation of the slot it was made for.
    fn generation(self) -> u32;
}

macro_rules! arena_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name {
            index: u32,
            generation: u32,
        }

        impl Key for $name {
            fn new(index: u32, generation: u32) -> Self {
                $name { index, generation }
            }
            fn index(self) -> usize {
                self.index as usize
            }
            fn generation(self) -> u32 {
                self.generation
            }
        }
    };
}

arena_key!(
    /// A WebRTC transport hosted by a worker.
    TransportKey
);
arena_key!(
    /// A room's router in a worker.
    RouterKey
);
arena_key!(
    /// A producer in its router.
    ProducerKey
);
arena_key!(
    /// A consumer in its router.
    ConsumerKey
);

#[derive(Debug, Clone)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Values of type `T` named by keys of type `K`; see the module documentation.
#[derive(Debug, Clone)]
pub struct Arena<K, T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
    key: PhantomData<fn() -> K>,
}

impl<K: Key, T> Default for Arena<K, T> {
    fn default() -> Self {
        Arena {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            key: PhantomData,
        }
    }
}

impl<K: Key, T> Arena<K, T> {
    /// An empty arena.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a value made from its own key.
    pub fn insert_with(&mut self, make: impl FnOnce(K) -> T) -> K {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    value: None,
                });
                // More than 2^32 live values cannot be: every table is bounded far below.
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        let key = K::new(index, slot.generation);
        slot.value = Some(make(key));
        self.len += 1;
        key
    }

    /// Stores a value.
    pub fn insert(&mut self, value: T) -> K {
        self.insert_with(|_| value)
    }

    /// The value of `key`, if it is still there.
    pub fn get(&self, key: K) -> Option<&T> {
        self.slots
            .get(key.index())
            .filter(|s| s.generation == key.generation())
            .and_then(|s| s.value.as_ref())
    }

    /// The value of `key`, writable.
    pub fn get_mut(&mut self, key: K) -> Option<&mut T> {
        self.slots
            .get_mut(key.index())
            .filter(|s| s.generation == key.generation())
            .and_then(|s| s.value.as_mut())
    }

    /// Whether `key` names a value.
    pub fn contains(&self, key: K) -> bool {
        self.get(key).is_some()
    }

    /// Takes the value of `key` out; its key (and every copy of it) finds nothing after.
    pub fn remove(&mut self, key: K) -> Option<T> {
        let slot = self
            .slots
            .get_mut(key.index())
            .filter(|s| s.generation == key.generation())?;
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(key.index() as u32);
        self.len -= 1;
        Some(value)
    }

    /// Values stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every key and value.
    pub fn iter(&self) -> impl Iterator<Item = (K, &T)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.value
                .as_ref()
                .map(|v| (K::new(i as u32, s.generation), v))
        })
    }

    /// Every key and value, writable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (K, &mut T)> + '_ {
        self.slots.iter_mut().enumerate().filter_map(|(i, s)| {
            let generation = s.generation;
            s.value
                .as_mut()
                .map(move |v| (K::new(i as u32, generation), v))
        })
    }

    /// Every value.
    pub fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.slots.iter().filter_map(|s| s.value.as_ref())
    }

    /// Every value, writable.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.slots.iter_mut().filter_map(|s| s.value.as_mut())
    }

    /// The keys of the values `keep` selects.
    pub fn keys_where(&self, mut keep: impl FnMut(&T) -> bool) -> Vec<K> {
        self.iter()
            .filter(|(_, v)| keep(v))
            .map(|(k, _)| k)
            .collect()
    }
}

impl<K: Key, T> std::ops::Index<K> for Arena<K, T> {
    type Output = T;

    /// The value of `key`; panics when it is gone (a bug: callers hold keys they checked).
    fn index(&self, key: K) -> &T {
        self.get(key).expect("a live arena key")
    }
}

impl<K: Key, T> std::ops::IndexMut<K> for Arena<K, T> {
    /// The value of `key`, writable; panics when it is gone (a bug, as for `Index`).
    fn index_mut(&mut self, key: K) -> &mut T {
        self.get_mut(key).expect("a live arena key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_find_their_value_and_stale_keys_nothing() {
        let mut a: Arena<ProducerKey, &str> = Arena::new();
        let x = a.insert("x");
        let y = a.insert_with(|k| if k.index() == 1 { "y" } else { "?" });
        assert_eq!((a[x], a[y], a.len()), ("x", "y", 2));
        assert_eq!(a.remove(x), Some("x"));
        assert_eq!(a.remove(x), None);
        assert!(!a.contains(x));
        // The slot is reused under a new generation: the old key still finds nothing.
        let z = a.insert("z");
        assert_eq!(z.index(), x.index());
        assert_ne!(z, x);
        assert_eq!(a.get(x), None);
        assert_eq!(a.get(z), Some(&"z"));
        *a.get_mut(z).unwrap() = "zz";
        let mut all: Vec<_> = a.iter().map(|(k, v)| (k, *v)).collect();
        all.sort();
        assert_eq!(all, vec![(z, "zz"), (y, "y")]);
        assert_eq!(a.keys_where(|v| v.starts_with('y')), vec![y]);
        a.remove(y);
        a.remove(z);
        assert!(a.is_empty());
        assert_eq!(a.values().count(), 0);
    }
}

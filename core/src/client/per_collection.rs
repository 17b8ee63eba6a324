//! A map keyed by app-state collection: one slot per collection in an array, so the client's
//! per-collection bookkeeping needs no `BTreeMap` (whose node code every key/value type
//! instantiates anew; docs/decisions.md, "wasm size"). It iterates in `Collection`'s `Ord`
//! order, as the `BTreeMap`s it replaces did.

use core::fmt;

use crate::appstate::Collection;

/// The collections in their `Ord` order: slot `i` holds `ORDER[i]`.
const ORDER: [Collection; 5] = [
    Collection::Regular,
    Collection::RegularLow,
    Collection::RegularHigh,
    Collection::CriticalBlock,
    Collection::CriticalUnblockLow,
];

/// The slot of a collection in `ORDER`.
fn slot(collection: Collection) -> usize {
    match collection {
        Collection::Regular => 0,
        Collection::RegularLow => 1,
        Collection::RegularHigh => 2,
        Collection::CriticalBlock => 3,
        Collection::CriticalUnblockLow => 4,
    }
}

/// A value per collection, with the part of `BTreeMap`'s interface the client uses.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PerCollection<T>([Option<T>; 5]);

impl<T> Default for PerCollection<T> {
    fn default() -> Self {
        PerCollection([None, None, None, None, None])
    }
}

impl<T: fmt::Debug> fmt::Debug for PerCollection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<T> PerCollection<T> {
    /// The collection's value.
    pub(crate) fn get(&self, collection: &Collection) -> Option<&T> {
        self.0[slot(*collection)].as_ref()
    }

    /// The collection's value, mutably.
    pub(crate) fn get_mut(&mut self, collection: &Collection) -> Option<&mut T> {
        self.0[slot(*collection)].as_mut()
    }

    /// Sets the collection's value, returning the one it replaces.
    pub(crate) fn insert(&mut self, collection: Collection, value: T) -> Option<T> {
        self.0[slot(collection)].replace(value)
    }

    /// The collection's value, set to `value` first when it has none.
    pub(crate) fn entry(&mut self, collection: Collection) -> Entry<'_, T> {
        Entry(&mut self.0[slot(collection)])
    }

    /// The collections with a value, with it, in `Collection` order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'static Collection, &T)> {
        ORDER
            .iter()
            .zip(self.0.iter())
            .filter_map(|(c, v)| v.as_ref().map(|v| (c, v)))
    }

    /// The collections with a value, with it mutably, in `Collection` order.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&'static Collection, &mut T)> {
        ORDER
            .iter()
            .zip(self.0.iter_mut())
            .filter_map(|(c, v)| v.as_mut().map(|v| (c, v)))
    }

    /// The values, in `Collection` order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.0.iter().flatten()
    }
}

/// A collection's slot, from [`PerCollection::entry`].
pub(crate) struct Entry<'a, T>(&'a mut Option<T>);

impl<'a, T> Entry<'a, T> {
    /// The value, set to `value` first when there is none.
    pub(crate) fn or_insert(self, value: T) -> &'a mut T {
        self.0.get_or_insert(value)
    }
}

impl<T> IntoIterator for PerCollection<T> {
    type Item = (Collection, T);
    type IntoIter = core::iter::FilterMap<
        core::iter::Zip<core::array::IntoIter<Collection, 5>, core::array::IntoIter<Option<T>, 5>>,
        fn((Collection, Option<T>)) -> Option<(Collection, T)>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        ORDER
            .into_iter()
            .zip(self.0)
            .filter_map(|(c, v)| v.map(|v| (c, v)))
    }
}

impl<T> Extend<(Collection, T)> for PerCollection<T> {
    fn extend<I: IntoIterator<Item = (Collection, T)>>(&mut self, items: I) {
        for (collection, value) in items {
            self.insert(collection, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_collection_order() {
        let mut sorted = ORDER;
        sorted.sort();
        assert_eq!(sorted, ORDER);
        for (i, c) in ORDER.iter().enumerate() {
            assert_eq!(slot(*c), i);
        }
    }

    #[test]
    fn behaves_as_a_map_in_key_order() {
        let mut map = PerCollection::default();
        assert!(map.iter().next().is_none());
        assert_eq!(map.insert(Collection::CriticalBlock, 1), None);
        assert_eq!(map.insert(Collection::Regular, 2), None);
        assert_eq!(map.insert(Collection::CriticalBlock, 3), Some(1));
        *map.entry(Collection::RegularHigh).or_insert(0) += 5;
        *map.entry(Collection::Regular).or_insert(0) += 5;
        let pairs: Vec<_> = map.iter().map(|(c, v)| (*c, *v)).collect();
        assert_eq!(
            pairs,
            vec![
                (Collection::Regular, 7),
                (Collection::RegularHigh, 5),
                (Collection::CriticalBlock, 3)
            ]
        );
        assert_eq!(map.values().copied().collect::<Vec<_>>(), vec![7, 5, 3]);
        assert_eq!(map.get_mut(&Collection::RegularHigh).map(|v| *v), Some(5));
        map.0[slot(Collection::RegularHigh)] = None;
        assert!(map.get(&Collection::RegularHigh).is_none());
        assert_eq!(format!("{map:?}"), "{Regular: 7, CriticalBlock: 3}");
        let owned: Vec<_> = map.clone().into_iter().collect();
        assert_eq!(
            owned,
            vec![(Collection::Regular, 7), (Collection::CriticalBlock, 3)]
        );
        let mut other = PerCollection::default();
        other.extend(owned);
        assert!(other == map);
    }
}

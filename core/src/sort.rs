//! One small in-place sort for the core's lists (record keys, key ids, MAC pairs, contacts).
//!
//! `slice::sort_unstable` (pattern-defeating quicksort with its small-sort networks) puts about
//! 3 KB of code into the wasm module for every element type it sorts; this heapsort is a few
//! hundred bytes per type, and O(n log n) in every case, with no allocation
//! (docs/decisions.md, "wasm size"). Like `sort_unstable`, it may reorder equal elements: callers
//! sort values whose equal elements are identical, or do not care about their order.

/// Sorts `items` ascending, in place.
pub(crate) fn sort_unstable<T: Ord>(items: &mut [T]) {
    let len = items.len();
    // A max-heap first, then the largest moved to the end one at a time.
    for node in (0..len / 2).rev() {
        sift_down(items, node, len);
    }
    for end in (1..len).rev() {
        items.swap(0, end);
        sift_down(items, 0, end);
    }
}

/// Restores the heap below `node` within `items[..end]`.
fn sift_down<T: Ord>(items: &mut [T], mut node: usize, end: usize) {
    loop {
        let mut child = 2 * node + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && items[child] < items[child + 1] {
            child += 1;
        }
        if items[node] >= items[child] {
            return;
        }
        items.swap(node, child);
        node = child;
    }
}

#[cfg(test)]
mod tests {
    use super::sort_unstable;

    /// A small deterministic generator (xorshift), so the test needs no randomness source.
    fn numbers(seed: u64, len: usize, modulo: u64) -> Vec<u64> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % modulo
            })
            .collect()
    }

    #[test]
    fn sorts_like_the_standard_library() {
        for len in [0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 100, 1000, 4097] {
            for (seed, modulo) in [(1, u64::MAX), (7, 3), (99, 50), (12345, 1)] {
                let mut ours = numbers(seed + len as u64, len, modulo);
                let mut expected = ours.clone();
                expected.sort_unstable();
                sort_unstable(&mut ours);
                assert_eq!(ours, expected, "len {len}, modulo {modulo}");
            }
        }
    }

    #[test]
    fn sorts_sorted_reversed_and_strings() {
        let mut ascending: Vec<u32> = (0..500).collect();
        let mut descending: Vec<u32> = (0..500).rev().collect();
        sort_unstable(&mut ascending);
        sort_unstable(&mut descending);
        assert_eq!(ascending, descending);
        assert!(ascending.windows(2).all(|w| w[0] <= w[1]));
        let mut words = vec!["pear", "apple", "fig", "apple", "banana"];
        sort_unstable(&mut words);
        assert_eq!(words, ["apple", "apple", "banana", "fig", "pear"]);
    }
}

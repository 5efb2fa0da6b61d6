//! A k-way merge by time: several sources (one per file, each written in time order by one
//! process) become one stream ascending by time, so the CDRs do not depend on which file a
//! record was in.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The order of a merge whose sources keep their own heads (so that a head can borrow its
/// source's buffers, and nothing is moved per item): the key of each source's head with the
/// source's index, smallest first, equal keys in source order. `merge_by_time` (the tests'
/// model of the run's merge) is this order with the heads kept for the sources.
#[derive(Clone, Debug)]
pub struct MergeOrder<K> {
    heads: BinaryHeap<Reverse<(K, usize)>>,
}

impl<K: Ord> MergeOrder<K> {
    /// An empty order for about `sources` sources.
    pub fn with_capacity(sources: usize) -> Self {
        Self {
            heads: BinaryHeap::with_capacity(sources),
        }
    }

    /// Source `source` has a head with this key; a source has at most one head in the order.
    pub fn push(&mut self, key: K, source: usize) {
        self.heads.push(Reverse((key, source)));
    }

    /// The source whose head comes next, if any source has one.
    pub fn first(&self) -> Option<usize> {
        self.heads.peek().map(|Reverse((_, source))| *source)
    }

    /// The source whose head comes next, taken out of the order (it has no head now).
    pub fn pop(&mut self) -> Option<usize> {
        self.heads.pop().map(|Reverse((_, source))| source)
    }

    /// The source whose head came next has a new head with `key`: as [`pop`](Self::pop) then
    /// [`push`](Self::push) for that source, in one step. Nothing happens when the order is
    /// empty.
    pub fn replace_first(&mut self, key: K) {
        // Dropping the PeekMut moves the changed head to its place.
        if let Some(mut first) = self.heads.peek_mut() {
            first.0.0 = key;
        }
    }

    /// How many sources have a head.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heads.len()
    }

    /// Whether no source has a head.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }
}

/// Merges `sources` by the key `time_of` gives each item: the stream yields, each time, the
/// source head with the smallest key; equal keys come in source order (the index in
/// `sources`), and within one source always in that source's own order. A source that goes
/// backwards in time is therefore never reordered: its late items come out after their
/// predecessors, as soon as they are the smallest head. With every source ascending, the
/// stream is ascending.
///
/// `time_of` is called once per item. The first item of each source is pulled when the merge
/// is made; after that, one item is pulled per item yielded. The tests' model of the run's
/// merge (which keeps the heads in the files' own buffers, through [`MergeOrder`]).
#[cfg(test)]
pub fn merge_by_time<S, K, F>(
    sources: impl IntoIterator<Item = S>,
    time_of: F,
) -> MergeByTime<S, K, F>
where
    S: Iterator,
    K: Ord,
    F: FnMut(&S::Item) -> K,
{
    let sources: Vec<S> = sources.into_iter().collect();
    let mut merge = MergeByTime {
        heads: sources.iter().map(|_| None).collect(),
        order: MergeOrder::with_capacity(sources.len()),
        sources,
        time_of,
    };
    for source in 0..merge.sources.len() {
        merge.pull(source);
    }
    merge
}

/// The stream made by [`merge_by_time`].
#[cfg(test)]
pub struct MergeByTime<S: Iterator, K, F> {
    sources: Vec<S>,
    /// The next item of each source not yet yielded, if the source has one.
    heads: Vec<Option<S::Item>>,
    /// The key and source of every head, smallest first.
    order: MergeOrder<K>,
    time_of: F,
}

#[cfg(test)]
impl<S, K, F> MergeByTime<S, K, F>
where
    S: Iterator,
    K: Ord,
    F: FnMut(&S::Item) -> K,
{
    /// Makes the next item of `source` its head.
    fn pull(&mut self, source: usize) {
        let Some(item) = self.sources.get_mut(source).and_then(Iterator::next) else {
            return;
        };
        self.order.push((self.time_of)(&item), source);
        if let Some(head) = self.heads.get_mut(source) {
            *head = Some(item);
        }
    }
}

#[cfg(test)]
impl<S, K, F> Iterator for MergeByTime<S, K, F>
where
    S: Iterator,
    K: Ord,
    F: FnMut(&S::Item) -> K,
{
    type Item = S::Item;

    fn next(&mut self) -> Option<S::Item> {
        let source = self.order.pop()?;
        let item = self.heads.get_mut(source).and_then(Option::take);
        self.pull(source);
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let queued = self.order.len();
        self.sources.iter().map(Iterator::size_hint).fold(
            (queued, Some(queued)),
            |(low, high), (more_low, more_high)| {
                (
                    low.saturating_add(more_low),
                    high.zip(more_high)
                        .and_then(|(high, more)| high.checked_add(more)),
                )
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn merged(files: Vec<Vec<(u32, &'static str)>>) -> Vec<(u32, &'static str)> {
        merge_by_time(files.into_iter().map(Vec::into_iter), |&(time, _)| time).collect()
    }

    #[test]
    fn ascending_files_merge_into_one_ascending_stream() {
        let stream = merged(vec![
            vec![(1, "a1"), (4, "a4"), (9, "a9")],
            vec![],
            vec![(2, "c2"), (3, "c3"), (10, "c10")],
        ]);
        assert_eq!(
            stream,
            [
                (1, "a1"),
                (2, "c2"),
                (3, "c3"),
                (4, "a4"),
                (9, "a9"),
                (10, "c10")
            ]
        );
    }

    #[test]
    fn equal_times_come_in_file_order_then_position_order() {
        let stream = merged(vec![
            vec![(5, "a1"), (5, "a2")],
            vec![(5, "b1")],
            vec![(4, "c1"), (5, "c2")],
        ]);
        assert_eq!(
            stream,
            [(4, "c1"), (5, "a1"), (5, "a2"), (5, "b1"), (5, "c2")]
        );
    }

    #[test]
    fn a_file_going_backwards_keeps_its_own_order() {
        let stream = merged(vec![
            vec![(5, "a5"), (1, "a1"), (6, "a6")],
            vec![(3, "b3"), (7, "b7")],
        ]);
        assert_eq!(
            stream,
            [(3, "b3"), (5, "a5"), (1, "a1"), (6, "a6"), (7, "b7")]
        );
    }

    #[test]
    fn replacing_the_first_head_orders_as_pop_then_push() {
        let mut order = MergeOrder::with_capacity(3);
        for (key, source) in [(5, 0), (3, 1), (5, 2)] {
            order.push(key, source);
        }
        assert_eq!(order.first(), Some(1));
        order.replace_first(5);
        assert_eq!(order.first(), Some(0), "equal keys in source order");
        order.replace_first(9);
        assert_eq!(
            std::iter::from_fn(|| order.pop()).collect::<Vec<_>>(),
            [1, 2, 0]
        );
        assert!(order.is_empty());
        order.replace_first(1);
        assert_eq!(order.len(), 0);
    }

    #[test]
    fn no_sources_give_nothing() {
        assert_eq!(merged(vec![]), []);
    }

    proptest! {
        #[test]
        fn the_merge_is_a_stable_sort_of_ascending_files(
            files in proptest::collection::vec(proptest::collection::vec(0u8..20, 0..8), 0..5)
        ) {
            let files: Vec<Vec<(u8, usize, usize)>> = files
                .into_iter()
                .enumerate()
                .map(|(file, mut times)| {
                    times.sort_unstable();
                    times.into_iter().enumerate().map(|(position, time)| (time, file, position)).collect()
                })
                .collect();
            let mut expected: Vec<_> = files.iter().flatten().copied().collect();
            expected.sort_unstable();
            let merge = merge_by_time(files.into_iter().map(Vec::into_iter), |&(time, _, _)| time);
            prop_assert_eq!(merge.size_hint(), (expected.len(), Some(expected.len())));
            prop_assert_eq!(merge.collect::<Vec<_>>(), expected);
        }
    }
}

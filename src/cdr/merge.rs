//! A k-way merge by time: several sources (one per file, each written in time order by one
//! process) become one stream ascending by time, so the CDRs do not depend on which file a
//! record was in.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Merges `sources` by the key `time_of` gives each item: the stream yields, each time, the
/// source head with the smallest key; equal keys come in source order (the index in
/// `sources`), and within one source always in that source's own order. A source that goes
/// backwards in time is therefore never reordered: its late items come out after their
/// predecessors, as soon as they are the smallest head. With every source ascending, the
/// stream is ascending.
///
/// `time_of` is called once per item. The first item of each source is pulled when the merge
/// is made; after that, one item is pulled per item yielded.
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
        order: BinaryHeap::with_capacity(sources.len()),
        sources,
        time_of,
    };
    for source in 0..merge.sources.len() {
        merge.pull(source);
    }
    merge
}

/// The stream made by [`merge_by_time`].
pub struct MergeByTime<S: Iterator, K, F> {
    sources: Vec<S>,
    /// The next item of each source not yet yielded, if the source has one.
    heads: Vec<Option<S::Item>>,
    /// The key and source of every head, smallest first.
    order: BinaryHeap<Reverse<(K, usize)>>,
    time_of: F,
}

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
        self.order.push(Reverse(((self.time_of)(&item), source)));
        if let Some(head) = self.heads.get_mut(source) {
            *head = Some(item);
        }
    }
}

impl<S, K, F> Iterator for MergeByTime<S, K, F>
where
    S: Iterator,
    K: Ord,
    F: FnMut(&S::Item) -> K,
{
    type Item = S::Item;

    fn next(&mut self) -> Option<S::Item> {
        let Reverse((_, source)) = self.order.pop()?;
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

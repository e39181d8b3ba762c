//! Reference counts of pool blocks: a block whose count is 0 is free. Allocation is
//! deterministic (the lowest free block, or the lowest free run at or after a point).
//! The free blocks below the highest one ever used are also kept in a two-level bitmap
//! ([`FreeBits`]), so that the next free block is found without walking the used ones
//! (a pool whose blocks are freed and reused one by one, as shadowing does, stays
//! linear in its operations).

/// The reference count of every block of a pool of `capacity` blocks. Blocks past the
/// highest one ever used cost no memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefTable {
    refs: Vec<u32>,
    capacity: u64,
    used: u64,
    /// The lowest free block: every block below it is in use.
    hint: u64,
    /// The free blocks below `refs.len()`.
    free: FreeBits,
}

/// A set of blocks as a bitmap, with a summary bit per 64-bit word that has a bit set:
/// the next member at or after a point is found in about n/4096 word reads at worst.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FreeBits {
    words: Vec<u64>,
    summary: Vec<u64>,
}

impl FreeBits {
    fn set(&mut self, p: u64, on: bool) {
        let (w, b) = ((p / 64) as usize, p % 64);
        if w >= self.words.len() {
            if !on {
                return;
            }
            self.words.resize(w + 1, 0);
            self.summary.resize(w / 64 + 1, 0);
        }
        if on {
            self.words[w] |= 1 << b;
        } else {
            self.words[w] &= !(1 << b);
        }
        let (s, sb) = (w / 64, w % 64);
        if self.words[w] != 0 {
            self.summary[s] |= 1 << sb;
        } else {
            self.summary[s] &= !(1 << sb);
        }
    }

    /// The lowest member at or after `from`.
    fn next(&self, from: u64) -> Option<u64> {
        let w = (from / 64) as usize;
        let here = self.words.get(w)? & (u64::MAX << (from % 64));
        if here != 0 {
            return Some(w as u64 * 64 + u64::from(here.trailing_zeros()));
        }
        let first = w + 1;
        let mut s = first / 64;
        let mut mask = u64::MAX.checked_shl((first % 64) as u32).unwrap_or(0);
        while let Some(&sum) = self.summary.get(s) {
            let m = sum & mask;
            if m != 0 {
                let w = s * 64 + m.trailing_zeros() as usize;
                let word = self.words.get(w)?;
                return Some(w as u64 * 64 + u64::from(word.trailing_zeros()));
            }
            s += 1;
            mask = u64::MAX;
        }
        None
    }

    fn clear(&mut self) {
        self.words.clear();
        self.summary.clear();
    }
}

impl RefTable {
    /// A table of `capacity` free blocks.
    pub fn new(capacity: u64) -> Self {
        RefTable {
            refs: Vec::new(),
            capacity,
            used: 0,
            hint: 0,
            free: FreeBits::default(),
        }
    }

    /// Blocks in the pool.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The count of block `p` (0 past the end).
    pub fn get(&self, p: u64) -> u32 {
        usize::try_from(p)
            .ok()
            .and_then(|i| self.refs.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// One more reference to `p` (ignored past the capacity).
    pub fn inc(&mut self, p: u64) {
        if p >= self.capacity {
            return;
        }
        let Ok(i) = usize::try_from(p) else {
            return;
        };
        if i >= self.refs.len() {
            for q in self.refs.len() as u64..p {
                self.free.set(q, true);
            }
            self.refs.resize(i + 1, 0);
        }
        if self.refs[i] == 0 {
            self.used += 1;
            self.free.set(p, false);
        }
        self.refs[i] += 1;
        if p == self.hint {
            self.hint = self.next_free(p + 1);
        }
    }

    /// The lowest free block at or after `from` (past the highest used block every
    /// block is free; the result may be the capacity: none).
    fn next_free(&self, from: u64) -> u64 {
        let end = self.refs.len() as u64;
        if from >= end {
            return from;
        }
        self.free.next(from).filter(|&p| p < end).unwrap_or(end)
    }

    /// One reference fewer to `p`; true when the block became free.
    pub fn dec(&mut self, p: u64) -> bool {
        let Some(r) = usize::try_from(p).ok().and_then(|i| self.refs.get_mut(i)) else {
            return false;
        };
        if *r == 0 {
            return false;
        }
        *r -= 1;
        if *r == 0 {
            self.used -= 1;
            self.free.set(p, true);
            self.hint = self.hint.min(p);
            return true;
        }
        false
    }

    /// Blocks with a non-zero count.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Free blocks.
    pub fn free(&self) -> u64 {
        self.capacity - self.used
    }

    /// Every block with a non-zero count, in order, with its count.
    pub fn nonzero(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.refs
            .iter()
            .enumerate()
            .filter(|(_, r)| **r != 0)
            .map(|(p, r)| (p as u64, *r))
    }

    /// The counts as a dense vector up to the highest used block (for comparisons).
    pub fn dense(&self) -> Vec<u32> {
        let mut v = self.refs.clone();
        while v.last() == Some(&0) {
            v.pop();
        }
        v
    }

    /// Forgets every count.
    pub fn clear(&mut self) {
        self.refs.clear();
        self.used = 0;
        self.hint = 0;
        self.free.clear();
    }

    /// The `n` lowest free blocks (fewer if the pool has fewer).
    pub fn pick_free(&self, n: usize) -> Vec<u64> {
        let mut out = Vec::with_capacity(n);
        let mut p = self.hint;
        while out.len() < n && p < self.capacity {
            out.push(p);
            p = self.next_free(p + 1);
        }
        out
    }

    /// The maximal runs of free blocks at or after `from`, lowest first, as
    /// `(first block, blocks)` (the last one reaching the end of the pool).
    pub fn free_runs(&self, from: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut p = from.max(self.hint);
        std::iter::from_fn(move || {
            while p < self.capacity && self.get(p) != 0 {
                p += 1;
            }
            if p >= self.capacity {
                return None;
            }
            let start = p;
            let used_end = self.refs.len() as u64;
            if p >= used_end {
                p = self.capacity;
            } else {
                while p < self.capacity && p < used_end && self.get(p) == 0 {
                    p += 1;
                }
                if p >= used_end {
                    p = self.capacity;
                }
            }
            Some((start, p - start))
        })
    }

    /// The lowest run of `k` free blocks starting at or after `from` (and after every
    /// block known to be in use), or `None` when the pool has no such run.
    pub fn find_run(&self, k: u64, from: u64) -> Option<u64> {
        if k == 0 {
            return Some(from.max(self.hint));
        }
        let mut start = from.max(self.hint);
        let mut len = 0u64;
        let mut p = start;
        let end = self.refs.len() as u64;
        while p < end {
            if self.get(p) == 0 {
                if len == 0 {
                    start = p;
                }
                len += 1;
                if len == k {
                    return Some(start);
                }
            } else {
                len = 0;
            }
            p += 1;
        }
        // past the highest used block everything is free
        if len == 0 {
            start = p;
        }
        (start.checked_add(k)? <= self.capacity).then_some(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_runs() {
        let mut t = RefTable::new(16);
        assert_eq!(t.find_run(4, 0), Some(0));
        for p in 0..6 {
            t.inc(p);
        }
        t.inc(2);
        assert_eq!(t.used(), 6);
        assert_eq!(t.find_run(2, 0), Some(6));
        assert!(!t.dec(2));
        assert!(t.dec(2));
        assert!(t.dec(3));
        assert_eq!(t.pick_free(3), vec![2, 3, 6]);
        assert_eq!(t.find_run(2, 0), Some(2));
        assert_eq!(t.find_run(3, 0), Some(6));
        assert_eq!(t.find_run(11, 0), None);
        assert_eq!(t.free(), 12);
        assert_eq!(t.free_runs(0).collect::<Vec<_>>(), vec![(2, 2), (6, 10)]);
        assert_eq!(t.free_runs(3).collect::<Vec<_>>(), vec![(3, 1), (6, 10)]);
    }

    #[test]
    fn free_blocks_are_found_across_words_of_the_bitmap() {
        let n = 64 * 64 * 3 + 7;
        let mut t = RefTable::new(n + 10);
        for p in 0..n {
            t.inc(p);
        }
        for p in [5, 64 * 70 + 3, n - 1] {
            assert!(t.dec(p));
        }
        assert_eq!(t.pick_free(5), vec![5, 64 * 70 + 3, n - 1, n, n + 1]);
        t.inc(5);
        assert_eq!(t.pick_free(2), vec![64 * 70 + 3, n - 1]);
        t.inc(64 * 70 + 3);
        t.inc(n - 1);
        assert_eq!(t.pick_free(1), vec![n]);
        t.inc(n + 5);
        assert_eq!(
            t.pick_free(7),
            vec![n, n + 1, n + 2, n + 3, n + 4, n + 6, n + 7]
        );
        assert_eq!(t.pick_free(20).len(), 9);
    }
}

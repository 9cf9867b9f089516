//! The training data loader: a fixed order per epoch, whatever the number of worker threads.
//!
//! Epoch `e` visits the training images in a permutation drawn from `(seed, e)` alone, and its
//! batches come out in that order even when several threads build them. An epoch's order thus
//! does not depend on how many epochs this process has run, which is what lets `caplab resume`
//! continue with exactly the batches an uninterrupted run would have seen. (burn's own loader
//! draws each epoch's order from the previous one and hands out batches in the order its
//! threads finish them.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::Dataset;
use burn::tensor::backend::Backend;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::batch::{CaptionBatch, CaptionBatcher, CaptionItem};

/// The order in which epoch `epoch` (from 1) visits `len` items.
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let stream = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(stream);
    order.shuffle(&mut rng);
    order
}

/// Batches of a shuffled dataset, the same for the same seed and epoch.
pub struct EpochLoader<B: Backend> {
    dataset: Arc<dyn Dataset<CaptionItem>>,
    batcher: CaptionBatcher,
    batch_size: usize,
    seed: u64,
    workers: usize,
    device: B::Device,
    /// The epoch the next `iter()` serves; shared by the loader's copies.
    next_epoch: Arc<AtomicUsize>,
}

impl<B: Backend> EpochLoader<B> {
    /// A loader whose first `iter()` serves epoch `first_epoch` (1 for a new run, `n + 1` when
    /// resuming after epoch `n`).
    pub fn new(
        dataset: Arc<dyn Dataset<CaptionItem>>,
        batcher: CaptionBatcher,
        batch_size: usize,
        seed: u64,
        workers: usize,
        device: B::Device,
        first_epoch: usize,
    ) -> Self {
        Self {
            dataset,
            batcher,
            batch_size: batch_size.max(1),
            seed,
            workers: workers.max(1),
            device,
            next_epoch: Arc::new(AtomicUsize::new(first_epoch)),
        }
    }

    fn with_parts(&self, dataset: Arc<dyn Dataset<CaptionItem>>, device: B::Device) -> Self {
        Self {
            dataset,
            batcher: self.batcher.clone(),
            batch_size: self.batch_size,
            seed: self.seed,
            workers: self.workers,
            device,
            next_epoch: self.next_epoch.clone(),
        }
    }
}

/// One epoch's batches, built ahead by worker threads and handed out in order.
struct EpochIter<B: Backend> {
    channels: Vec<Receiver<CaptionBatch<B>>>,
    sizes: Vec<usize>,
    next: usize,
    items_done: usize,
    items_total: usize,
}

impl<B: Backend> Iterator for EpochIter<B> {
    type Item = CaptionBatch<B>;

    fn next(&mut self) -> Option<CaptionBatch<B>> {
        if self.next >= self.sizes.len() {
            return None;
        }
        let worker = self.next % self.channels.len();
        // A worker that died (an image that became unreadable mid-run) drops its sender.
        let batch = self.channels[worker].recv().unwrap_or_else(|_| {
            panic!("the data loader's worker thread stopped; see the error above")
        });
        self.items_done += self.sizes[self.next];
        self.next += 1;
        Some(batch)
    }
}

impl<B: Backend> DataLoaderIterator<CaptionBatch<B>> for EpochIter<B> {
    fn progress(&self) -> Progress {
        Progress::new(self.items_done, self.items_total)
    }
}

impl<B: Backend> DataLoader<B, CaptionBatch<B>> for EpochLoader<B> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<CaptionBatch<B>> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        let order = epoch_order(self.dataset.len(), self.seed, epoch);
        let batches: Arc<Vec<Vec<usize>>> = Arc::new(
            order
                .chunks(self.batch_size)
                .map(<[usize]>::to_vec)
                .collect(),
        );
        let sizes = batches.iter().map(Vec::len).collect();
        let workers = self.workers.min(batches.len()).max(1);
        let channels = (0..workers)
            .map(|w| {
                // Two batches ahead per worker.
                let (tx, rx) = sync_channel::<CaptionBatch<B>>(2);
                let batches = batches.clone();
                let dataset = self.dataset.clone();
                let batcher = self.batcher.clone();
                let device = self.device.clone();
                std::thread::Builder::new()
                    .name(format!("caplab-loader-{w}"))
                    .spawn(move || {
                        for ids in batches.iter().skip(w).step_by(workers) {
                            let items = ids.iter().filter_map(|&i| dataset.get(i)).collect();
                            let batch = batcher.batch(items, &device);
                            if tx.send(batch).is_err() {
                                return; // the epoch was abandoned
                            }
                        }
                    })
                    .unwrap_or_else(|e| panic!("cannot start a data loader thread: {e}"));
                rx
            })
            .collect();
        Box::new(EpochIter {
            channels,
            sizes,
            next: 0,
            items_done: 0,
            items_total: self.dataset.len(),
        })
    }

    fn num_items(&self) -> usize {
        self.dataset.len()
    }

    fn to_device(&self, device: &B::Device) -> Arc<dyn DataLoader<B, CaptionBatch<B>>> {
        Arc::new(self.with_parts(self.dataset.clone(), device.clone()))
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<B, CaptionBatch<B>>> {
        let part =
            burn::data::dataset::transform::PartialDataset::new(self.dataset.clone(), start, end);
        Arc::new(self.with_parts(Arc::new(part), self.device.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epochs_order_depends_only_on_seed_and_epoch() {
        let a = epoch_order(50, 7, 3);
        assert_eq!(a, epoch_order(50, 7, 3));
        assert_ne!(a, epoch_order(50, 7, 4));
        assert_ne!(a, epoch_order(50, 8, 3));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>(), "a permutation");
    }

    #[test]
    fn batches_come_in_the_epochs_order_with_any_number_of_workers() {
        use crate::batch::{CaptionItems, ImageSource};
        type B = burn::backend::NdArray;
        let n = 23;
        let pixels: Vec<Arc<[f32]>> = (0..n).map(|i| vec![i as f32; 3].into()).collect();
        let captions: Vec<Vec<Vec<u32>>> = (0..n).map(|i| vec![vec![4 + i as u32]]).collect();
        let dataset: Arc<dyn Dataset<CaptionItem>> = Arc::new(CaptionItems::new(
            ImageSource::Memory(Arc::new(pixels)),
            captions,
        ));
        let batcher = CaptionBatcher {
            shape: [3, 1, 1],
            precomputed: false,
            captions_per_image: 1,
        };
        let indices = |workers: usize, first_epoch: usize| -> Vec<Vec<usize>> {
            let loader = EpochLoader::<B>::new(
                dataset.clone(),
                batcher.clone(),
                4,
                11,
                workers,
                Default::default(),
                first_epoch,
            );
            // Epochs first_epoch and first_epoch + 1.
            (0..2)
                .flat_map(|_| loader.iter().map(|b| b.indices).collect::<Vec<_>>())
                .collect()
        };
        let one = indices(1, 1);
        assert_eq!(one, indices(3, 1), "workers do not change the order");
        let flat: Vec<usize> = one[..6].concat();
        assert_eq!(flat, epoch_order(n, 11, 1));
        // A loader starting at epoch 2 (a resumed run) serves what the first served second.
        assert_eq!(indices(2, 2)[..6], one[6..]);
    }
}

//! Loaders: every format read from small files the test writes itself; corrupt images skipped and
//! counted with their path; batches a pure function of the seed.

use std::sync::Arc;

mod common;

use common::{idx_bytes, write_idx};
use dnas::data::cifar::Cifar;
use dnas::data::folder::Folder;
use dnas::data::idx::Idx;
use dnas::data::loader::LoaderConfig;
use dnas::data::{open, Augment, DataSpec, Dataset, Loader, Normalize};

fn norm1() -> Normalize {
    Normalize { mean: vec![0.0], std: vec![1.0] }
}

#[test]
fn idx_plain_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), "train", 40, true);
    write_idx(dir.path(), "t10k", 20, false);
    let aug = Augment { pad: 0, flip: false };
    let d =
        Idx::open(&dir.path().join("train-images-idx3-ubyte.gz"), &dir.path().join("train-labels-idx1-ubyte.gz"), norm1(), aug).unwrap();
    assert_eq!((d.len(), d.shape(), d.label(13)), (40, [1, 6, 5], 3));
    let x = d.load(13, None).unwrap();
    assert_eq!(x.len(), 30);
    assert!((x[7] - (30.0 + 7.0) / 255.0).abs() < 1e-6, "{}", x[7]);
    // The --data form opens both splits and carves the held-out set.
    let s = open(&DataSpec { source: format!("idx:{}", dir.path().display()), held_out: 8, seed: 1, size: None, channels: None }).unwrap();
    assert_eq!((s.train.len(), s.held_out.len(), s.test.len()), (32, 8, 20));
    // A truncated file is an error naming it.
    write_idx(dir.path(), "bad", 5, false);
    std::fs::write(dir.path().join("bad-images-idx3-ubyte"), idx_bytes(&[5, 6, 5], &[0; 10])).unwrap();
    let e = Idx::open(&dir.path().join("bad-images-idx3-ubyte"), &dir.path().join("bad-labels-idx1-ubyte"), norm1(), aug).err().unwrap();
    assert!(format!("{e:#}").contains("bad-images-idx3-ubyte"), "{e:#}");
}

#[test]
fn cifar10_and_cifar100_records() {
    let dir = tempfile::tempdir().unwrap();
    let rec = |label: &[u8], v: u8| -> Vec<u8> { label.iter().copied().chain(std::iter::repeat_n(v, 3072)).collect() };
    let c10: Vec<u8> = (0..4).flat_map(|i| rec(&[i as u8 + 1], i as u8 * 50)).collect();
    std::fs::write(dir.path().join("test_batch.bin"), &c10).unwrap();
    let n = Normalize { mean: vec![0.0; 3], std: vec![1.0; 3] };
    let a = Augment { pad: 4, flip: true };
    let d = Cifar::open(&[dir.path().join("test_batch.bin")], 10, n.clone(), a).unwrap();
    assert_eq!((d.len(), d.label(2), d.shape()), (4, 3, [3, 32, 32]));
    assert!((d.load(2, None).unwrap()[100] - 100.0 / 255.0).abs() < 1e-6);
    let c100: Vec<u8> = (0..3).flat_map(|i| rec(&[1, 60 + i as u8], 7)).collect();
    std::fs::write(dir.path().join("train.bin"), &c100).unwrap();
    let d = Cifar::open(&[dir.path().join("train.bin")], 100, n.clone(), a).unwrap();
    assert_eq!((d.len(), d.label(1)), (3, 61), "the fine label is used");
    std::fs::write(dir.path().join("short.bin"), &c10[..5000]).unwrap();
    let e = Cifar::open(&[dir.path().join("short.bin")], 10, n, a).err().unwrap();
    assert!(format!("{e:#}").contains("short.bin"), "{e:#}");
}

#[test]
fn image_folder_skips_and_counts_a_corrupt_jpeg() {
    let dir = tempfile::tempdir().unwrap();
    for (c, class) in ["cat", "dog"].iter().enumerate() {
        std::fs::create_dir_all(dir.path().join(class)).unwrap();
        for i in 0..3 {
            let img = image::RgbImage::from_fn(40 + i * 7, 30, |x, y| image::Rgb([(x * 5) as u8, (y * 7) as u8, (c * 200) as u8]));
            img.save(dir.path().join(class).join(format!("{i}.jpg"))).unwrap();
        }
    }
    std::fs::write(dir.path().join("dog/broken.jpg"), b"\xff\xd8\xff\xe0 definitely not a jpeg").unwrap();
    let f = Folder::open(dir.path(), 3, 16, 18, Normalize { mean: vec![0.5; 3], std: vec![0.5; 3] }).unwrap();
    assert_eq!((f.len(), f.num_classes(), f.classes()), (7, 2, &["cat".to_string(), "dog".to_string()][..]));
    let grey = Folder::open(dir.path(), 1, 8, 8, Normalize { mean: vec![0.5], std: vec![0.5] }).unwrap();
    assert_eq!(grey.load(0, None).unwrap().len(), 64);
    let f: Arc<dyn Dataset> = Arc::new(f);
    for augment in [false, true] {
        let loader =
            Loader::new(f.clone(), LoaderConfig { batch: 4, shuffle: true, augment, drop_last: false, seed: 3, workers: 2, prefetch: 1 });
        let batches: Vec<_> = loader.epoch(0, 0).collect();
        let skipped: Vec<&String> = batches.iter().flat_map(|b| &b.skipped).collect();
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(skipped[0].contains("broken.jpg"), "{}", skipped[0]);
        assert_eq!(batches.iter().map(|b| b.n).sum::<usize>(), 6);
        assert!(batches.iter().all(|b| b.x.len() == b.n * 3 * 16 * 16));
    }
}

#[test]
fn the_same_seed_gives_identical_batches_and_other_seeds_differ() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), "train", 64, false);
    let d: Arc<dyn Dataset> = Arc::new(
        Idx::open(
            &dir.path().join("train-images-idx3-ubyte"),
            &dir.path().join("train-labels-idx1-ubyte"),
            norm1(),
            Augment { pad: 2, flip: true },
        )
        .unwrap(),
    );
    let run = |seed: u64, workers: usize, epoch: usize| -> Vec<(Vec<f32>, Vec<i64>)> {
        let l =
            Loader::new(d.clone(), LoaderConfig { batch: 10, shuffle: true, augment: true, drop_last: true, seed, workers, prefetch: 2 });
        l.epoch(epoch, 0).map(|b| (b.x, b.y)).collect()
    };
    let a = run(5, 1, 0);
    assert_eq!(a.len(), 6);
    assert_eq!(a, run(5, 3, 0), "worker count must not change batches");
    assert_ne!(a, run(6, 1, 0), "another seed gives another order/augmentation");
    assert_ne!(a, run(5, 1, 1), "another epoch gives another order");
    // Starting mid-epoch yields exactly the tail of the full epoch.
    let l =
        Loader::new(d.clone(), LoaderConfig { batch: 10, shuffle: true, augment: true, drop_last: true, seed: 5, workers: 2, prefetch: 2 });
    let tail: Vec<_> = l.epoch(0, 4).map(|b| (b.x, b.y)).collect();
    assert_eq!(tail, a[4..].to_vec());
    // Augmentation actually changes pixels but keeps labels.
    let plain = Loader::new(d.clone(), LoaderConfig { augment: false, ..l.config().clone() });
    let p: Vec<_> = plain.epoch(0, 0).map(|b| (b.x, b.y)).collect();
    assert_eq!(p.iter().map(|b| b.1.clone()).collect::<Vec<_>>(), a.iter().map(|b| b.1.clone()).collect::<Vec<_>>());
    assert_ne!(p, a);
}

//! What signing costs: the broadcaster signing and a verifier checking ten seconds of a
//! 1 Mbit/s, 30 fps H.264 stream with 128 kbit/s AAC (a record every keyframe, once a
//! second), and the bytes the records and certificates add. Run with
//! `cargo bench -p signed --bench signing`; bench/results/signing.md has the numbers.

use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use signed::sei::Codec;
use signed::{SessionKey, Signer, Verdict, Verifier};

const SECONDS: u64 = 10;
const NOW: u64 = 1_800_000_000_000;

/// (dts, keyframe, sample) video frames of ~4.2 KB and ~340-byte audio frames, in order.
enum Item {
    Video(u64, bool, Vec<u8>),
    Audio(Vec<u8>),
}

fn stream() -> Vec<Item> {
    let mut out = Vec::new();
    let mut audio = 0u64;
    for n in 0..SECONDS * 30 {
        let dts = n * 1000 / 30;
        while audio * 21 <= dts {
            out.push(Item::Audio((0..340).map(|i| (audio + i) as u8).collect()));
            audio += 1;
        }
        let key = n % 30 == 0;
        let size = if key { 20_000 } else { 3_600 };
        let mut sample = (size as u32).to_be_bytes().to_vec();
        sample.push(if key { 0x65 } else { 0x41 });
        sample.extend((1..size).map(|i| (n as usize * 7 + i) as u8 | 1));
        out.push(Item::Video(dts, key, sample));
    }
    out
}

fn signer() -> Signer {
    let account = SigningKey::from_bytes(&[7; 32]);
    Signer::new(
        SessionKey::new(&account, [9; 32], "bench", NOW - 1000, 3_600_000),
        Codec::Avc,
        4,
        30,
    )
}

fn sign(items: &[Item]) -> Vec<Item> {
    let mut s = signer();
    items
        .iter()
        .map(|item| match item {
            Item::Video(dts, key, sample) => Item::Video(*dts, *key, s.video(*dts, 0, *key, sample)),
            Item::Audio(frame) => {
                s.audio(frame);
                Item::Audio(frame.clone())
            }
        })
        .collect()
}

fn verify(items: &[Item]) -> Verdict {
    let trusted = vec![SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes()];
    let mut v = Verifier::new(trusted, "bench", Codec::Avc, 4, 60);
    for item in items {
        match item {
            Item::Video(dts, key, sample) => v.video(*dts, 0, *key, sample, NOW),
            Item::Audio(frame) => v.audio(frame),
        }
    }
    v.verdict().clone()
}

fn bytes(items: &[Item]) -> usize {
    items
        .iter()
        .map(|i| match i {
            Item::Video(_, _, s) => s.len(),
            Item::Audio(a) => a.len(),
        })
        .sum()
}

fn benches(c: &mut Criterion) {
    let plain = stream();
    let signed = sign(&plain);
    assert!(matches!(verify(&signed), Verdict::Verified { records } if records >= SECONDS - 1));
    let (before, after) = (bytes(&plain), bytes(&signed));
    println!(
        "stream: {:.0} kbit/s; records and certificates add {} bytes in {SECONDS} s: {:.2} kbit/s ({:.3}%)",
        before as f64 * 8.0 / SECONDS as f64 / 1000.0,
        after - before,
        (after - before) as f64 * 8.0 / SECONDS as f64 / 1000.0,
        (after - before) as f64 * 100.0 / before as f64
    );
    c.bench_function("sign 10 s of 1.2 Mbit/s (the broadcaster)", |b| b.iter(|| sign(&plain)));
    c.bench_function("verify 10 s of 1.2 Mbit/s (the server or a viewer)", |b| {
        b.iter(|| verify(&signed))
    });
}

criterion_group!(group, benches);
criterion_main!(group);

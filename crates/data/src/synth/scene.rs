//! Random scene description: objects (shape, colour, size, position), layout and background.

use rand::Rng;

/// Object shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    Circle,
    Square,
    Triangle,
    Star,
    Diamond,
    Cross,
    Ring,
}

impl Shape {
    pub const ALL: [Shape; 7] = [
        Shape::Circle,
        Shape::Square,
        Shape::Triangle,
        Shape::Star,
        Shape::Diamond,
        Shape::Cross,
        Shape::Ring,
    ];
}

/// Object colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Colour {
    Red,
    Green,
    Blue,
    Yellow,
    Orange,
    Purple,
    Pink,
    White,
    Black,
}

impl Colour {
    pub const ALL: [Colour; 9] = [
        Colour::Red,
        Colour::Green,
        Colour::Blue,
        Colour::Yellow,
        Colour::Orange,
        Colour::Purple,
        Colour::Pink,
        Colour::White,
        Colour::Black,
    ];

    pub fn rgb(self) -> [f32; 3] {
        match self {
            Colour::Red => [220.0, 30.0, 30.0],
            Colour::Green => [30.0, 170.0, 50.0],
            Colour::Blue => [35.0, 70.0, 225.0],
            Colour::Yellow => [245.0, 225.0, 30.0],
            Colour::Orange => [250.0, 140.0, 20.0],
            Colour::Purple => [135.0, 40.0, 170.0],
            Colour::Pink => [250.0, 130.0, 195.0],
            Colour::White => [250.0, 250.0, 250.0],
            Colour::Black => [15.0, 15.0, 15.0],
        }
    }
}

/// Background colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Background {
    Gray,
    White,
    Black,
    Beige,
    Teal,
}

impl Background {
    pub const ALL: [Background; 5] = [
        Background::Gray,
        Background::White,
        Background::Black,
        Background::Beige,
        Background::Teal,
    ];

    pub fn rgb(self) -> [f32; 3] {
        match self {
            Background::Gray => [128.0, 128.0, 128.0],
            Background::White => [232.0, 232.0, 232.0],
            Background::Black => [30.0, 30.0, 30.0],
            Background::Beige => [215.0, 195.0, 150.0],
            Background::Teal => [40.0, 110.0, 110.0],
        }
    }
}

/// Object size classes; the value is the half-extent as a fraction of the image side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SizeClass {
    Small,
    Medium,
    Large,
}

impl SizeClass {
    pub fn fraction(self) -> f32 {
        match self {
            SizeClass::Small => 0.105,
            SizeClass::Medium => 0.145,
            SizeClass::Large => 0.20,
        }
    }
}

/// How multiple objects are arranged; objects are stored in layout order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One object.
    Single,
    /// Left to right.
    Horizontal,
    /// Top to bottom.
    Vertical,
}

/// One object; `cx, cy, r` in pixels (r = half-extent).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Object {
    pub shape: Shape,
    pub colour: Colour,
    pub size: SizeClass,
    pub cx: f32,
    pub cy: f32,
    pub r: f32,
}

/// A whole scene; `objects` are ordered left→right (horizontal) or top→bottom (vertical).
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    pub size: u32,
    pub background: Background,
    pub layout: Layout,
    pub objects: Vec<Object>,
    /// Background gradient strength along x and y (intensity units across the image).
    pub gradient: [f32; 2],
    /// Uniform per-pixel noise amplitude (intensity units).
    pub noise: f32,
}

/// Fractions of the image side separating left/centre/right and top/middle/bottom.
pub const REGION_BORDERS: [f32; 2] = [0.38, 0.62];

fn colour_distance(a: [f32; 3], b: [f32; 3]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

fn pick<T: Copy, R: Rng>(rng: &mut R, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

/// Samples a random scene for a `size × size` image.
pub fn sample_scene<R: Rng>(rng: &mut R, size: u32) -> Scene {
    let s = size as f32;
    let n = match rng.random_range(0..10) {
        0..=2 => 1,
        3..=6 => 2,
        _ => 3,
    };
    let background = pick(rng, &Background::ALL);
    let layout = match n {
        1 => Layout::Single,
        _ if rng.random_bool(0.5) => Layout::Horizontal,
        _ => Layout::Vertical,
    };
    let colours: Vec<Colour> = Colour::ALL
        .into_iter()
        .filter(|c| colour_distance(c.rgb(), background.rgb()) > 110.0)
        .collect();
    let sizes: &[SizeClass] = if n == 3 {
        &[SizeClass::Small, SizeClass::Medium]
    } else {
        &[SizeClass::Small, SizeClass::Medium, SizeClass::Large]
    };
    let mut kinds: Vec<(Shape, Colour, SizeClass)> = Vec::with_capacity(n);
    while kinds.len() < n {
        let shape = pick(rng, &Shape::ALL);
        let colour = pick(rng, &colours);
        if kinds.iter().any(|k| k.0 == shape && k.1 == colour) {
            continue;
        }
        kinds.push((shape, colour, pick(rng, sizes)));
    }
    let radii: Vec<f32> = kinds
        .iter()
        .map(|k| k.2.fraction() * s * rng.random_range(0.92..1.08))
        .collect();
    let margin = 0.03 * s;
    let mut centres = Vec::with_capacity(n);
    if n == 1 {
        let r = radii[0];
        let mut coord = || {
            let mut c = rng.random_range(r + margin..=s - r - margin);
            // Keep clear of the left/centre/right (top/middle/bottom) borders used in captions.
            for _ in 0..20 {
                if REGION_BORDERS.iter().all(|b| (c / s - b).abs() > 0.03) {
                    break;
                }
                c = rng.random_range(r + margin..=s - r - margin);
            }
            c
        };
        let cx = coord();
        let cy = coord();
        centres.push((cx, cy));
    } else {
        let slot = s / n as f32;
        let rmax = radii.iter().copied().fold(0.0, f32::max);
        let base = rng.random_range(rmax + margin..=s - rmax - margin);
        let gap = 0.015 * s;
        for (i, &r) in radii.iter().enumerate() {
            let free = (slot - 2.0 * r - 2.0 * gap).max(0.0);
            let along = i as f32 * slot + (slot - free) / 2.0 + rng.random_range(0.0..=free);
            let jitter = rng.random_range(-0.06 * s..=0.06 * s);
            let across = (base + jitter).clamp(r + margin, s - r - margin);
            centres.push(match layout {
                Layout::Vertical => (across, along),
                _ => (along, across),
            });
        }
    }
    let objects = kinds
        .iter()
        .zip(radii)
        .zip(centres)
        .map(|((&(shape, colour, size), r), (cx, cy))| Object {
            shape,
            colour,
            size,
            cx,
            cy,
            r,
        })
        .collect();
    Scene {
        size,
        background,
        layout,
        objects,
        gradient: [rng.random_range(-35.0..35.0), rng.random_range(-35.0..35.0)],
        noise: rng.random_range(4.0..16.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn scenes_are_valid() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..2000 {
            let sc = sample_scene(&mut rng, 128);
            let s = 128.0;
            assert!((1..=3).contains(&sc.objects.len()));
            for o in &sc.objects {
                assert!(o.cx - o.r >= 0.0 && o.cx + o.r <= s, "{o:?}");
                assert!(o.cy - o.r >= 0.0 && o.cy + o.r <= s, "{o:?}");
                assert!(colour_distance(o.colour.rgb(), sc.background.rgb()) > 110.0);
            }
            if sc.layout == Layout::Single {
                let o = sc.objects[0];
                for b in REGION_BORDERS {
                    assert!(
                        (o.cx / s - b).abs() > 0.03 && (o.cy / s - b).abs() > 0.03,
                        "{o:?}"
                    );
                }
            }
            for w in sc.objects.windows(2) {
                let (a, b) = (w[0], w[1]);
                let (d_along, d_across) = match sc.layout {
                    Layout::Horizontal => (b.cx - a.cx, (b.cy - a.cy).abs()),
                    _ => (b.cy - a.cy, (b.cx - a.cx).abs()),
                };
                assert!(d_along >= a.r + b.r, "overlap {a:?} {b:?}");
                assert!(d_along > 1.4 * d_across, "ambiguous relation {a:?} {b:?}");
            }
        }
    }
}

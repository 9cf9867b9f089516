//! Rasterises a [`Scene`] into an RGB image (no anti-aliasing), with gradient background and noise.

use ::image::RgbImage;
use rand::Rng;

use super::scene::{Object, Scene, Shape};

/// Even-odd point-in-polygon test.
fn in_polygon(u: f32, v: f32, poly: &[(f32, f32)]) -> bool {
    let mut inside = false;
    let mut j = poly.len() - 1;
    for i in 0..poly.len() {
        let (xi, yi) = poly[i];
        let (xj, yj) = poly[j];
        if (yi > v) != (yj > v) && u < (xj - xi) * (v - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

fn star_polygon() -> [(f32, f32); 10] {
    std::array::from_fn(|k| {
        let radius = if k % 2 == 0 { 1.0 } else { 0.45 };
        let angle = -std::f32::consts::FRAC_PI_2 + k as f32 * std::f32::consts::PI / 5.0;
        (radius * angle.cos(), radius * angle.sin())
    })
}

const TRIANGLE: [(f32, f32); 3] = [(0.0, -1.0), (1.0, 0.8), (-1.0, 0.8)];

/// Whether unit-square coordinates `(u, v)` (y down, object spans [-1, 1]) are inside `shape`.
fn inside(shape: Shape, u: f32, v: f32, star: &[(f32, f32)]) -> bool {
    match shape {
        Shape::Circle => u * u + v * v <= 1.0,
        Shape::Square => u.abs() <= 0.82 && v.abs() <= 0.82,
        Shape::Triangle => in_polygon(u, v, &TRIANGLE),
        Shape::Star => in_polygon(u, v, star),
        Shape::Diamond => u.abs() + v.abs() <= 1.0,
        Shape::Cross => (u.abs() <= 0.32 && v.abs() <= 1.0) || (v.abs() <= 0.32 && u.abs() <= 1.0),
        Shape::Ring => {
            let d = u * u + v * v;
            (0.27..=1.0).contains(&d)
        }
    }
}

fn draw(buf: &mut [f32], size: usize, obj: &Object, shade: f32, star: &[(f32, f32)]) {
    let colour = obj.colour.rgb();
    let x0 = (obj.cx - obj.r).floor().max(0.0) as usize;
    let y0 = (obj.cy - obj.r).floor().max(0.0) as usize;
    let x1 = ((obj.cx + obj.r).ceil() as usize).min(size);
    let y1 = ((obj.cy + obj.r).ceil() as usize).min(size);
    for y in y0..y1 {
        let v = (y as f32 + 0.5 - obj.cy) / obj.r;
        for x in x0..x1 {
            let u = (x as f32 + 0.5 - obj.cx) / obj.r;
            if inside(obj.shape, u, v, star) {
                let i = 3 * (y * size + x);
                for c in 0..3 {
                    buf[i + c] = colour[c] + shade;
                }
            }
        }
    }
}

/// Renders `scene`; `rng` drives the per-object shading and pixel noise.
pub fn render<R: Rng>(scene: &Scene, rng: &mut R) -> RgbImage {
    let size = scene.size as usize;
    let s = scene.size as f32;
    let bg = scene.background.rgb();
    let mut buf = vec![0.0f32; 3 * size * size];
    for y in 0..size {
        let gy = (y as f32 / s - 0.5) * scene.gradient[1];
        for x in 0..size {
            let g = (x as f32 / s - 0.5) * scene.gradient[0] + gy;
            let i = 3 * (y * size + x);
            for c in 0..3 {
                buf[i + c] = bg[c] + g;
            }
        }
    }
    let star = star_polygon();
    for obj in &scene.objects {
        let shade = rng.random_range(-12.0..12.0);
        draw(&mut buf, size, obj, shade, &star);
    }
    let amp = scene.noise;
    let mut bytes = Vec::with_capacity(buf.len());
    for chunk in buf.chunks(4) {
        let noise = rng.random::<u32>().to_le_bytes();
        for (value, n) in chunk.iter().zip(noise) {
            let offset = (n as f32 / 255.0 * 2.0 - 1.0) * amp;
            bytes.push((value + offset).round().clamp(0.0, 255.0) as u8);
        }
    }
    RgbImage::from_raw(scene.size, scene.size, bytes)
        .unwrap_or_else(|| RgbImage::new(scene.size, scene.size))
}

#[cfg(test)]
mod tests {
    use super::super::scene::{Background, Colour, Layout, SizeClass};
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn shapes_are_distinct_masks() {
        let star = star_polygon();
        let masks: Vec<Vec<bool>> = Shape::ALL
            .iter()
            .map(|&s| {
                (0..400)
                    .map(|k| {
                        let u = (k % 20) as f32 / 10.0 - 0.95;
                        let v = (k / 20) as f32 / 10.0 - 0.95;
                        inside(s, u, v, &star)
                    })
                    .collect()
            })
            .collect();
        for i in 0..masks.len() {
            let area = masks[i].iter().filter(|b| **b).count();
            assert!(area > 80, "{:?} too small: {area}", Shape::ALL[i]);
            for j in 0..i {
                let diff = masks[i]
                    .iter()
                    .zip(&masks[j])
                    .filter(|(a, b)| a != b)
                    .count();
                assert!(diff > 20, "{:?} vs {:?}", Shape::ALL[i], Shape::ALL[j]);
            }
        }
    }

    #[test]
    fn object_colour_is_painted() {
        let scene = Scene {
            size: 64,
            background: Background::Gray,
            layout: Layout::Single,
            objects: vec![Object {
                shape: Shape::Square,
                colour: Colour::Red,
                size: SizeClass::Large,
                cx: 32.0,
                cy: 32.0,
                r: 12.0,
            }],
            gradient: [0.0, 0.0],
            noise: 0.0,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let img = render(&scene, &mut rng);
        let centre = img.get_pixel(32, 32).0;
        assert!(centre[0] > 190 && centre[1] < 60, "{centre:?}");
        assert_eq!(img.get_pixel(2, 2).0, [128, 128, 128]);
    }
}

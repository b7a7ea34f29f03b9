//! Spatial and temporal layer selection for one SVC consumer of a VP9 producer (issue 9,
//! "SVC consumers"; mediasoup's VP9 `PayloadDescriptorHandler::Process` with the
//! `SvcConsumer`'s encoding context): packets of spatial layers above the current one and
//! of temporal layers above the current one are dropped (the consumer's sequence manager
//! closes the gaps), and the RTP marker, which ends a picture for the receiver, is set on
//! the last packet of the highest spatial layer forwarded.
//!
//! Switching (draft-ietf-payload-vp9-16 §4.2, §4.3):
//! - spatial up: on a key picture (its base layer starts a frame without inter-picture
//!   prediction); the layers above carry no earlier pictures of their own to predict from;
//! - spatial down: in K-SVC (`_KEY` modes, where the layers of a non-key picture depend on
//!   their own layer only) on a key picture as well, as mediasoup does; in full SVC at the
//!   end of a frame of the target layer;
//! - temporal up: at a switching up point (U) that starts a frame; temporal down: at the
//!   end of a frame of the target temporal layer.
//!
//! Picture ids and TL0PICIDX are forwarded unchanged: only whole pictures of upper temporal
//! layers are dropped, which no kept picture refers to, and a receiver in non-flexible mode
//! treats their ids as pictures of layers it does not need.

use super::vp9_descriptor::Vp9Descriptor;

/// What to do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SvcVerdict {
    /// Forward it; with `marker` the RTP marker is to be set (end of the picture as
    /// forwarded).
    Forward {
        /// Set the marker bit.
        marker: bool,
    },
    /// Drop it (a layer not forwarded, or no key picture yet).
    Drop,
}

/// The layer selection state of one consumer.
#[derive(Debug, Clone)]
pub struct Vp9SvcFilter {
    spatial_layers: u8,
    temporal_layers: u8,
    ksvc: bool,
    target_spatial: u8,
    target_temporal: u8,
    current_spatial: Option<u8>,
    current_temporal: Option<u8>,
}

impl Vp9SvcFilter {
    /// A filter for a producer with `spatial_layers` x `temporal_layers` (its scalability
    /// mode), K-SVC when `ksvc`, aiming at the top layers until told otherwise.
    pub fn new(spatial_layers: u8, temporal_layers: u8, ksvc: bool) -> Self {
        let (spatial_layers, temporal_layers) = (spatial_layers.max(1), temporal_layers.max(1));
        Self {
            spatial_layers,
            temporal_layers,
            ksvc,
            target_spatial: spatial_layers - 1,
            target_temporal: temporal_layers - 1,
            current_spatial: None,
            current_temporal: None,
        }
    }

    /// The layers to forward from now on (clamped to the producer's); spatial switches wait
    /// for a key picture (see [`Vp9SvcFilter::wants_key_frame`]).
    pub fn set_target(&mut self, spatial: u8, temporal: u8) {
        self.target_spatial = spatial.min(self.spatial_layers - 1);
        self.target_temporal = temporal.min(self.temporal_layers - 1);
    }

    /// The target layers (spatial, temporal).
    pub fn target(&self) -> (u8, u8) {
        (self.target_spatial, self.target_temporal)
    }

    /// The layers forwarded now (spatial, temporal), once a key picture started them.
    pub fn current(&self) -> Option<(u8, u8)> {
        self.current_spatial.zip(self.current_temporal)
    }

    /// Whether a key picture is needed: to start, or to switch spatial layers (up, or down
    /// in K-SVC).
    pub fn wants_key_frame(&self) -> bool {
        match self.current_spatial {
            None => true,
            Some(c) => self.target_spatial > c || (self.ksvc && self.target_spatial < c),
        }
    }

    /// Starts afresh: the next packet forwarded must begin a key picture.
    pub fn reset(&mut self) {
        self.current_spatial = None;
        self.current_temporal = None;
    }

    /// Whether the packet described by `d` is forwarded, and with which marker; updates the
    /// current layers. A packet without layer indices is forwarded as it is.
    pub fn process(&mut self, d: &Vp9Descriptor) -> SvcVerdict {
        let (Some(sid), Some(tid)) = (d.spatial_layer, d.temporal_layer) else {
            return match self.current_spatial {
                None if !d.key_frame() => SvcVerdict::Drop,
                _ => {
                    self.current_spatial.get_or_insert(0);
                    self.current_temporal.get_or_insert(0);
                    SvcVerdict::Forward { marker: false }
                }
            };
        };
        if sid >= self.spatial_layers || tid >= self.temporal_layers {
            return SvcVerdict::Drop;
        }
        let key = d.key_frame();
        let (mut spatial, mut temporal) = match self.current() {
            Some(c) => c,
            None if key => (self.target_spatial, 0),
            None => return SvcVerdict::Drop,
        };
        if self.target_spatial > spatial {
            if key {
                (spatial, temporal) = (self.target_spatial, 0);
            }
        } else if self.target_spatial < spatial {
            let at_switch = if self.ksvc {
                key
            } else {
                sid == self.target_spatial && d.ends_frame
            };
            if at_switch {
                (spatial, temporal) = (self.target_spatial, 0);
            }
        }
        self.current_spatial = Some(spatial);
        if sid > spatial {
            self.current_temporal = Some(temporal);
            return SvcVerdict::Drop;
        }
        if self.target_temporal > temporal {
            if tid > temporal && d.switching_up_point && d.begins_frame {
                temporal = tid.min(self.target_temporal);
            }
        } else if self.target_temporal < temporal && tid == self.target_temporal && d.ends_frame {
            temporal = self.target_temporal;
        }
        self.current_temporal = Some(temporal);
        if tid > temporal {
            return SvcVerdict::Drop;
        }
        SvcVerdict::Forward {
            marker: sid == spatial && d.ends_frame,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet of picture `pic`: one packet per layer frame (B and E both set).
    fn packet(key: bool, sid: u8, tid: u8, up: bool) -> Vp9Descriptor {
        Vp9Descriptor {
            inter_picture_predicted: !key,
            begins_frame: true,
            ends_frame: true,
            picture_id: Some(1),
            temporal_layer: Some(tid),
            switching_up_point: up,
            spatial_layer: Some(sid),
            inter_layer_dependency: key && sid > 0,
            flexible: false,
        }
    }

    /// L3T3_KEY pictures: TIDs 0 2 1 2 0 ..., every layer frame in one packet; the key
    /// picture first. Returns the (sid, tid, marker) forwarded per picture.
    fn run(f: &mut Vp9SvcFilter, pictures: usize, key_at: &[usize]) -> Vec<Vec<(u8, u8, bool)>> {
        const TIDS: [u8; 4] = [0, 2, 1, 2];
        (0..pictures)
            .map(|p| {
                let key = key_at.contains(&p);
                let tid = if key { 0 } else { TIDS[p % 4] };
                (0..3)
                    .filter_map(|sid| {
                        // Key picture: SID 0 intra, upper layers inter-layer predicted
                        // (P=0 on all of them).
                        let d = packet(key, sid, tid, tid > 0);
                        match f.process(&d) {
                            SvcVerdict::Forward { marker } => Some((sid, tid, marker)),
                            SvcVerdict::Drop => None,
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn starts_on_a_key_picture_with_every_layer_and_marks_the_top() {
        let mut f = Vp9SvcFilter::new(3, 3, true);
        assert!(f.wants_key_frame());
        let out = run(&mut f, 6, &[2]);
        assert!(
            out[0].is_empty() && out[1].is_empty(),
            "nothing before the key picture"
        );
        assert_eq!(out[2], vec![(0, 0, false), (1, 0, false), (2, 0, true)]);
        // Temporal layers climb at switching up points.
        assert_eq!(out[3].len(), 3);
        assert_eq!(out[3][2], (2, 2, true));
        assert_eq!(f.current(), Some((2, 2)));
        assert!(!f.wants_key_frame());
    }

    #[test]
    fn ksvc_spatial_switches_wait_for_a_key_picture() {
        let mut f = Vp9SvcFilter::new(3, 3, true);
        run(&mut f, 4, &[0]);
        // Down to spatial layer 0: not before the next key picture.
        f.set_target(0, 2);
        assert!(f.wants_key_frame());
        let out = run(&mut f, 8, &[4]);
        assert_eq!(out[1].len(), 3, "still every layer before the key picture");
        assert_eq!(out[4], vec![(0, 0, true)], "only the base layer, marked");
        assert!(
            out[5..]
                .iter()
                .all(|p| p.iter().all(|(s, _, m)| *s == 0 && *m))
        );
        assert_eq!(f.current().map(|c| c.0), Some(0));
        assert!(!f.wants_key_frame());
        // Up to spatial layer 1 on the next key picture.
        f.set_target(1, 2);
        let out = run(&mut f, 6, &[3]);
        assert_eq!(out[1].len(), 1);
        assert_eq!(out[3], vec![(0, 0, false), (1, 0, true)]);
    }

    #[test]
    fn full_svc_switches_down_at_the_end_of_a_target_layer_frame() {
        let mut f = Vp9SvcFilter::new(3, 3, false);
        run(&mut f, 4, &[0]);
        f.set_target(1, 2);
        assert!(!f.wants_key_frame());
        let out = run(&mut f, 2, &[]);
        assert_eq!(out[0].iter().map(|p| p.0).collect::<Vec<_>>(), vec![0, 1]);
        assert!(out[0][1].2, "layer 1 now ends the picture");
    }

    #[test]
    fn temporal_layers_above_the_target_are_dropped() {
        let mut f = Vp9SvcFilter::new(3, 3, true);
        f.set_target(2, 0);
        let out = run(&mut f, 9, &[0]);
        for (p, layers) in out.iter().enumerate() {
            let expect = if p % 4 == 0 { 3 } else { 0 };
            assert_eq!(layers.len(), expect, "picture {p}: {layers:?}");
        }
        // Up to temporal layer 1: at its next switching up point.
        f.set_target(2, 1);
        let out = run(&mut f, 4, &[]);
        assert_eq!(out[1].len(), 0, "TID 2 stays dropped");
        assert_eq!(out[2].len(), 3, "TID 1 forwarded");
        assert_eq!(f.current(), Some((2, 1)));
        // Down to 0 at the end of a TID 0 frame.
        f.set_target(2, 0);
        let out = run(&mut f, 4, &[]);
        assert_eq!(out[0].len(), 3);
        assert!(out[1..].iter().all(Vec::is_empty));
    }

    #[test]
    fn layers_beyond_the_mode_and_packets_without_indices() {
        let mut f = Vp9SvcFilter::new(2, 2, true);
        assert_eq!(f.process(&packet(true, 2, 0, false)), SvcVerdict::Drop);
        assert_eq!(f.process(&packet(true, 0, 3, false)), SvcVerdict::Drop);
        let mut bare = Vp9Descriptor::parse(&[0x0c]).unwrap();
        assert_eq!(f.process(&bare), SvcVerdict::Forward { marker: false });
        bare.inter_picture_predicted = true;
        assert_eq!(f.process(&bare), SvcVerdict::Forward { marker: false });
        f.reset();
        assert_eq!(f.process(&bare), SvcVerdict::Drop);
        // Targets are clamped to the mode.
        f.set_target(9, 9);
        assert_eq!(f.target(), (1, 1));
    }
}

//! RTP header extension elements in the one-byte and two-byte forms (RFC 8285 §4).

/// RFC 8285 §4.2: the "defined by profile" value of the one-byte header form.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;

/// The form of a header extension block, from its "defined by profile" field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionForm {
    /// One-byte headers: profile 0xBEDE, ids 1-14, values of 1-16 bytes (RFC 8285 §4.2).
    OneByte,
    /// Two-byte headers: profile 0x100X, ids 1-255, values of 0-255 bytes (RFC 8285 §4.3).
    TwoByte,
    /// Any other profile: not RFC 8285, its elements are not interpreted.
    Other,
}

impl ExtensionForm {
    /// The form that a block's profile value announces.
    pub fn from_profile(profile: u16) -> Self {
        if profile == ONE_BYTE_PROFILE {
            ExtensionForm::OneByte
        } else if profile & 0xfff0 == 0x1000 {
            ExtensionForm::TwoByte
        } else {
            ExtensionForm::Other
        }
    }
}

/// One element of an extension block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionElement {
    /// The local identifier.
    pub id: u8,
    /// Offset of the value from the start of the block's data.
    pub offset: usize,
    /// Length of the value.
    pub value_len: usize,
}

/// Iterates the elements of an extension block's data. Padding bytes are skipped; the
/// walk stops at the reserved id 15 of the one-byte form (RFC 8285 §4.2) and at an element
/// that would run past the block, keeping the elements before it.
#[derive(Debug, Clone)]
pub struct ExtensionIter<'a> {
    form: Option<ExtensionForm>,
    data: &'a [u8],
    at: usize,
}

impl<'a> ExtensionIter<'a> {
    pub(crate) fn new(form: Option<ExtensionForm>, data: &'a [u8]) -> Self {
        ExtensionIter { form, data, at: 0 }
    }
}

impl Iterator for ExtensionIter<'_> {
    type Item = ExtensionElement;

    fn next(&mut self) -> Option<ExtensionElement> {
        let d = self.data;
        loop {
            let &b = d.get(self.at)?;
            if b == 0 {
                self.at += 1;
                continue;
            }
            let (id, offset, value_len) = match self.form? {
                ExtensionForm::OneByte => {
                    if b >> 4 == 15 {
                        self.at = d.len();
                        return None;
                    }
                    (b >> 4, self.at + 1, usize::from(b & 0x0f) + 1)
                }
                ExtensionForm::TwoByte => {
                    let &len = d.get(self.at + 1)?;
                    (b, self.at + 2, usize::from(len))
                }
                ExtensionForm::Other => return None,
            };
            if offset + value_len > d.len() {
                self.at = d.len();
                return None;
            }
            self.at = offset + value_len;
            return Some(ExtensionElement {
                id,
                offset,
                value_len,
            });
        }
    }
}

/// Writes an extension block (its 4-byte header, the elements and zero padding to a
/// 32-bit boundary) into `out`, choosing the one-byte form when every id is 1-14 and
/// every value 1-16 bytes long, the two-byte form otherwise. Returns the bytes written,
/// or `None` when `out` is too small or an element cannot be written (id 0, or a value
/// over 255 bytes).
pub fn write_extension_block(elements: &[(u8, &[u8])], out: &mut [u8]) -> Option<usize> {
    let one_byte = elements
        .iter()
        .all(|(id, v)| (1..=14).contains(id) && (1..=16).contains(&v.len()));
    let head = if one_byte { 1 } else { 2 };
    let mut at = 4;
    for &(id, value) in elements {
        if id == 0 || value.len() > 255 {
            return None;
        }
        let end = at + head + value.len();
        let slot = out.get_mut(at..end)?;
        if one_byte {
            slot[0] = (id << 4) | (value.len() as u8 - 1);
        } else {
            slot[0] = id;
            slot[1] = value.len() as u8;
        }
        slot[head..].copy_from_slice(value);
        at = end;
    }
    let padded = at.div_ceil(4) * 4;
    out.get_mut(at..padded)?.fill(0);
    let profile: u16 = if one_byte { ONE_BYTE_PROFILE } else { 0x1000 };
    let words = u16::try_from((padded - 4) / 4).ok()?;
    out.get_mut(..4)?.copy_from_slice(&[
        (profile >> 8) as u8,
        profile as u8,
        (words >> 8) as u8,
        words as u8,
    ]);
    Some(padded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(form: ExtensionForm, data: &[u8]) -> Vec<(u8, Vec<u8>)> {
        ExtensionIter::new(Some(form), data)
            .map(|e| (e.id, data[e.offset..e.offset + e.value_len].to_vec()))
            .collect()
    }

    #[test]
    fn one_byte_elements_padding_and_stop() {
        let data = [0x00, 0x21, 1, 2, 0x00, 0x40, 9, 0xf0, 0x10, 5];
        assert_eq!(
            collect(ExtensionForm::OneByte, &data),
            vec![(2, vec![1, 2]), (4, vec![9])]
        );
    }

    #[test]
    fn truncated_element_ends_the_walk() {
        assert_eq!(
            collect(ExtensionForm::OneByte, &[0x10, 7, 0x23, 1]),
            vec![(1, vec![7])]
        );
        assert_eq!(
            collect(ExtensionForm::TwoByte, &[5, 0, 6]),
            vec![(5, vec![])]
        );
        assert_eq!(collect(ExtensionForm::TwoByte, &[5, 9, 1]), vec![]);
        assert_eq!(collect(ExtensionForm::Other, &[1, 2, 3]), vec![]);
    }

    #[test]
    fn writes_both_forms() {
        let mut out = [0xffu8; 32];
        let n = write_extension_block(&[(1, b"0"), (3, &[1, 2, 3])], &mut out).unwrap();
        assert_eq!(
            &out[..n],
            &[0xbe, 0xde, 0, 2, 0x10, b'0', 0x32, 1, 2, 3, 0, 0]
        );
        let n = write_extension_block(&[(20, &[7])], &mut out).unwrap();
        assert_eq!(&out[..n], &[0x10, 0x00, 0, 1, 20, 1, 7, 0]);
        assert_eq!(
            collect(ExtensionForm::TwoByte, &out[4..n]),
            vec![(20, vec![7])]
        );
        assert_eq!(write_extension_block(&[(1, &[0; 17])], &mut out[..8]), None);
        assert_eq!(write_extension_block(&[(0, &[1])], &mut out), None);
        assert_eq!(write_extension_block(&[], &mut out), Some(4));
    }
}

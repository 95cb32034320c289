// SPDX-License-Identifier: GPL-2.0

//! Named bit fields of hardware values, after nova-core's `register!`.
//!
//! [`bitfield!`](crate::bitfield) declares a newtype over an integer and,
//! for each field, a getter returning the field shifted down to bit 0 and a
//! `with_` setter that replaces it, so that code reads `csb.write()` instead
//! of `csb & 7`. The layout is written once, next to the register it belongs
//! to.

/// Declares a value type with named bit fields.
///
/// ```
/// gmig_core::bitfield! {
///     /// A pointer register.
///     pub struct Ptr(u32) {
///         /// Write pointer.
///         2:0 write, with_write;
///         /// Read pointer.
///         10:8 read, with_read;
///     }
/// }
/// let p = Ptr(0).with_write(5).with_read(3);
/// assert_eq!((p.0, p.write(), p.read()), (0x305, 5, 3));
/// assert_eq!(p.with_write(9).write(), 1, "a setter keeps the field's width");
/// ```
#[macro_export]
macro_rules! bitfield {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($ty:ty) {
            $( $(#[$fmeta:meta])* $hi:literal : $lo:literal $get:ident, $set:ident; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        $vis struct $name(pub $ty);

        #[allow(dead_code)]
        impl $name {
            $(
                $(#[$fmeta])*
                #[inline]
                $vis const fn $get(self) -> $ty {
                    (self.0 >> $lo) & <$ty>::MAX >> (<$ty>::BITS - 1 - ($hi - $lo))
                }

                #[doc = concat!("This value with `", stringify!($get), "` replaced by the low bits of `v`.")]
                #[inline]
                #[must_use]
                $vis const fn $set(self, v: $ty) -> Self {
                    let mask = <$ty>::MAX >> (<$ty>::BITS - 1 - ($hi - $lo)) << $lo;
                    Self((self.0 & !mask) | ((v << $lo) & mask))
                }
            )*
        }
    };
}

#[cfg(test)]
mod tests {
    crate::bitfield! {
        struct Wide(u64) {
            63:0 all, with_all;
            63:32 hi, with_hi;
            31:12 page, with_page;
            0:0 bit, with_bit;
        }
    }

    #[test]
    fn fields_cover_their_bits_only() {
        let v = Wide(0).with_hi(0xdead_beef).with_page(0xf_ffff).with_bit(1);
        assert_eq!(v.0, 0xdead_beef_ffff_f001);
        assert_eq!((v.hi(), v.page(), v.bit()), (0xdead_beef, 0xf_ffff, 1));
        assert_eq!(v.all(), v.0);
        assert_eq!(v.with_page(0).0, 0xdead_beef_0000_0001);
        assert_eq!(Wide(u64::MAX).with_bit(0).0, u64::MAX - 1);
        assert_eq!(Wide(0).with_all(7).all(), 7);
    }
}

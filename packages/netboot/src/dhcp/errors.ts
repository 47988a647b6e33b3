/**
 * Why a datagram was not a usable DHCP message. Decoders return these (never throw);
 * servers count them per reason and drop the datagram.
 */
export type DhcpDecodeError =
  /** Shorter than the 236-byte header plus the magic cookie. */
  | 'short'
  /** The four bytes after the header are not 63 82 53 63. */
  | 'bad-cookie'
  /** op is neither 1 (request) nor 2 (reply). */
  | 'bad-op'
  /** hlen is larger than the 16-byte chaddr field. */
  | 'bad-hlen'
  /** An option's length runs past the end of its area. */
  | 'option-overflow'
  /** Option 52 holds a value other than 1, 2 or 3, or has the wrong length. */
  | 'bad-overload'
  /** An option Outpost relies on has an impossible length (53 not 1 byte, ...). */
  | 'bad-option'
  /** No option 53 (a BOOTP request): not served. */
  | 'no-message-type';

export const DHCP_DECODE_ERRORS: readonly DhcpDecodeError[] = [
  'short',
  'bad-cookie',
  'bad-op',
  'bad-hlen',
  'option-overflow',
  'bad-overload',
  'bad-option',
  'no-message-type',
];

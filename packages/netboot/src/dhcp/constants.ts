/** DHCP message types (option 53), RFC 2132 §9.6. */
export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;
export type MessageTypeValue = (typeof MessageType)[keyof typeof MessageType];

export const messageTypeName = (t: number): string =>
  (Object.entries(MessageType).find(([, v]) => v === t)?.[0] ?? `TYPE${t}`).toLowerCase();

/** Option codes used by Outpost (RFC 2132, 3004, 4578, 3046; PXE 2.1; iPXE). */
export const Opt = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN_NAME: 15,
  BROADCAST: 28,
  VENDOR_SPECIFIC: 43,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAM_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER: 66,
  BOOTFILE: 67,
  USER_CLASS: 77,
  RELAY_AGENT: 82,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_GUID: 97,
  IPXE_ENCAP: 175,
  END: 255,
} as const;

/** UDP ports of the protocol. */
export const Ports = { SERVER: 67, CLIENT: 68, PXE: 4011 } as const;

/** BOOTP op codes. */
export const Op = { REQUEST: 1, REPLY: 2 } as const;

/** The broadcast bit of `flags` (RFC 2131 §2). */
export const BROADCAST_FLAG = 0x8000;

/** The magic cookie that starts the options area (RFC 2132 §2). */
export const MAGIC_COOKIE = 0x63825363;

/** Fixed BOOTP header length, cookie excluded. */
export const HEADER_LENGTH = 236;

/** Smallest DHCP message every client must accept (RFC 2131 §2: 576-byte IP datagram). */
export const MIN_MAX_MESSAGE = 576;
/** IP (20) + UDP (8) headers, subtracted from option 57 to get the DHCP payload limit. */
export const IP_UDP_OVERHEAD = 28;

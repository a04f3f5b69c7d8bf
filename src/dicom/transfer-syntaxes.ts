/** The transfer syntaxes raddraft renders, by UID: each one's name and the kind of decoder it takes (decode.ts). */
export const TRANSFER_SYNTAXES: Record<string, { name: string; kind: 'native' | 'big-endian' | 'rle' | 'jpeg' | 'jpeg-ls' | 'jpeg2000' | 'htj2k' }> = {
  '1.2.840.10008.1.2': { name: 'Implicit VR Little Endian', kind: 'native' },
  '1.2.840.10008.1.2.1': { name: 'Explicit VR Little Endian', kind: 'native' },
  '1.2.840.10008.1.2.1.99': { name: 'Deflated Explicit VR Little Endian', kind: 'native' },
  '1.2.840.10008.1.2.2': { name: 'Explicit VR Big Endian', kind: 'big-endian' },
  '1.2.840.10008.1.2.5': { name: 'RLE Lossless', kind: 'rle' },
  '1.2.840.10008.1.2.4.50': { name: 'JPEG Baseline', kind: 'jpeg' },
  '1.2.840.10008.1.2.4.51': { name: 'JPEG Extended', kind: 'jpeg' },
  '1.2.840.10008.1.2.4.57': { name: 'JPEG Lossless', kind: 'jpeg' },
  '1.2.840.10008.1.2.4.70': { name: 'JPEG Lossless SV1', kind: 'jpeg' },
  '1.2.840.10008.1.2.4.80': { name: 'JPEG-LS Lossless', kind: 'jpeg-ls' },
  '1.2.840.10008.1.2.4.81': { name: 'JPEG-LS Near-Lossless', kind: 'jpeg-ls' },
  '1.2.840.10008.1.2.4.90': { name: 'JPEG 2000 Lossless', kind: 'jpeg2000' },
  '1.2.840.10008.1.2.4.91': { name: 'JPEG 2000', kind: 'jpeg2000' },
  '1.2.840.10008.1.2.4.201': { name: 'HTJ2K Lossless', kind: 'htj2k' },
  '1.2.840.10008.1.2.4.202': { name: 'HTJ2K Lossless RPCL', kind: 'htj2k' },
  '1.2.840.10008.1.2.4.203': { name: 'HTJ2K', kind: 'htj2k' },
};

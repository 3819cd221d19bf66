// heic-decode ships no types: the one call this project makes (libheif compiled to wasm).
declare module 'heic-decode' {
  /** Decodes the primary image with its HEIF transformations (irot/imir/clap) applied; RGBA, 8 bits. */
  function decode(input: { buffer: Uint8Array }): Promise<{ width: number; height: number; data: Uint8ClampedArray }>;
  export = decode;
}

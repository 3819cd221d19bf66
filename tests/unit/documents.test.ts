import { detectMimeType, MAGIC_BYTES_NEEDED, matchesDeclaredType } from '../../services/shared/magic-bytes';
import { endsLikeAPdf, truncateUtf8 } from '../../services/shared/media/pdf-protocol';
import { MEDIA_TYPE_RULES, originalKey } from '../../services/shared/media-types';
import { checkFile, defaultMediaType, mimeTypeFromFileName } from '../../services/client/files';

describe('PDF content sniffing', () => {
  it('detects %PDF- at the start', () => {
    expect(detectMimeType(Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1'))).toBe('application/pdf');
  });
  it('detects %PDF- after junk within the first 1024 bytes, as PDF readers do', () => {
    const head = Buffer.concat([Buffer.alloc(1019, 0x20), Buffer.from('%PDF-')]);
    expect(head.length).toBe(1024);
    expect(detectMimeType(head)).toBe('application/pdf');
  });
  it('reads enough bytes for that window', () => {
    expect(MAGIC_BYTES_NEEDED).toBeGreaterThanOrEqual(1024);
  });
  it('ignores %PDF- beyond the first 1024 bytes', () => {
    expect(detectMimeType(Buffer.concat([Buffer.alloc(1020, 0x20), Buffer.from('%PDF-1.4')]))).toBeUndefined();
  });
  it('keeps a file that starts as another type that type, whatever text follows', () => {
    const jpegWithPdfText = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('%PDF-1.4')]);
    expect(detectMimeType(jpegWithPdfText)).toBe('image/jpeg');
    expect(matchesDeclaredType('application/pdf', detectMimeType(jpegWithPdfText))).toBe(false);
  });
  it('does not take plain text or a lower-case header for a PDF', () => {
    expect(detectMimeType(Buffer.from('hello, this is not a document'))).toBeUndefined();
    expect(detectMimeType(Buffer.from('%pdf-1.4'))).toBeUndefined();
  });
});

describe('DOCUMENT media type', () => {
  it('accepts application/pdf up to 100 MiB and keys the original as .pdf', () => {
    expect(MEDIA_TYPE_RULES.DOCUMENT).toMatchObject({ allowedMimeTypes: ['application/pdf'], maxBytes: 100 * 1024 * 1024, kind: 'document' });
    expect(originalKey('DOCUMENT', { tenant: 't1', owner: 'u1' }, 'id', 'application/pdf', new Date(5))).toBe('t1/u1/document/5-id.pdf');
  });
});

describe('truncateUtf8', () => {
  it('keeps text within the bound unchanged', () => {
    expect(truncateUtf8('abc', 3)).toEqual({ text: 'abc', truncated: false });
  });
  it('never cuts a multi-byte character in two', () => {
    // "é" is 2 bytes, "€" 3: a 4-byte bound fits "aé" and not the first byte of "€".
    expect(truncateUtf8('aé€', 4)).toEqual({ text: 'aé', truncated: true });
    expect(Buffer.byteLength(truncateUtf8('€'.repeat(1000), 1000).text)).toBe(999);
  });
});

describe('endsLikeAPdf', () => {
  it('finds %%EOF in the last 1024 bytes, trailing junk included', () => {
    expect(endsLikeAPdf(Buffer.from('...trailer<<>>\nstartxref\n9\n%%EOF\r\n'))).toBe(true);
    expect(endsLikeAPdf(Buffer.concat([Buffer.from('%%EOF'), Buffer.alloc(1000, 0x78)]))).toBe(true);
  });
  it('counts the 1024 bytes before padding: NULs and white space after %%EOF', () => {
    expect(endsLikeAPdf(Buffer.concat([Buffer.from('%%EOF'), Buffer.alloc(2048, 0)]))).toBe(true);
    expect(endsLikeAPdf(Buffer.concat([Buffer.from('%%EOF'), Buffer.alloc(4000, 0x20), Buffer.from('\r\n\f\t'.repeat(500))]))).toBe(true);
    // The tail as read: a view into a larger buffer.
    const file = Buffer.concat([Buffer.alloc(100, 0x41), Buffer.from('%%EOF'), Buffer.alloc(3000, 0)]);
    expect(endsLikeAPdf(file.subarray(50))).toBe(true);
  });
  it('finds none in a file cut short, or with more than 1024 bytes of content after it', () => {
    expect(endsLikeAPdf(Buffer.from('%PDF-1.7\n1 0 obj\n<< /Type /Catalog'))).toBe(false);
    expect(endsLikeAPdf(Buffer.concat([Buffer.from('%%EOF'), Buffer.alloc(1024, 0x78)]))).toBe(false);
    expect(endsLikeAPdf(Buffer.concat([Buffer.from('%%EOF'), Buffer.alloc(1024, 0x78), Buffer.alloc(2048, 0)]))).toBe(false);
    expect(endsLikeAPdf(Buffer.alloc(4096, 0))).toBe(false);
  });
});

describe('client: PDFs by extension', () => {
  it('infers application/pdf and DOCUMENT from .pdf in any case', () => {
    expect(mimeTypeFromFileName('Site Plan.PDF')).toBe('application/pdf');
    expect(defaultMediaType('application/pdf')).toBe('DOCUMENT');
  });
  it('refuses a PDF above 100 MiB, or as an image, before any request', () => {
    expect(checkFile({ fileType: 'application/pdf', fileSize: 100 * 1024 * 1024 + 1 }, 'DOCUMENT')?.code).toBe('FILE_TOO_LARGE');
    expect(checkFile({ fileType: 'application/pdf', fileSize: 1000 }, 'POST_IMAGE')?.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(checkFile({ fileType: 'application/pdf', fileSize: 1000 }, 'DOCUMENT')).toBeUndefined();
  });
});

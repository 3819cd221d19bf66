import { privateContainerMetadata, remuxFormat, remuxWithoutMetadataArgs } from '../../services/shared/media/ffmpeg';

describe('privateContainerMetadata', () => {
  it('names the location, free-text and XMP tags of the container and of each stream, and every data track', () => {
    const found = privateContainerMetadata({
      format: {
        tags: {
          major_brand: 'qt  ',
          'com.apple.quicktime.location.ISO6709': '+48.8584+002.2945/',
          'com.apple.quicktime.make': 'Apple',
          'location-eng': '+48.8584+002.2945/',
          title: 'my flat',
          comment: 'x',
          xmp: '<x:xmpmeta/>',
          encoder: 'Lavf59',
          creation_time: '2026-01-01T00:00:00Z',
        },
      },
      streams: [
        { index: 0, codec_type: 'video', tags: { handler_name: 'Core Media Video', language: 'und' } },
        { index: 1, codec_type: 'audio', tags: { title: 'my voice' } },
        { index: 2, codec_type: 'data', codec_tag_string: 'gpmd', tags: { handler_name: 'GoPro MET' } },
        { index: 3, codec_type: 'subtitle', codec_name: 'mov_text' },
        { index: 4, codec_type: 'attachment' },
      ],
      chapters: [{ tags: { title: 'arrival at home' } }],
    });
    expect(found).toEqual(['com.apple.quicktime.location.ISO6709', 'location-eng', 'title', 'comment', 'xmp', 'stream 1: title', 'data stream 2', 'subtitle stream 3', 'attachment stream 4', 'chapter 0: title']);
  });

  it('finds nothing in what ffmpeg and phones write that says neither where nor what', () => {
    expect(
      privateContainerMetadata({
        format: { tags: { major_brand: 'isom', minor_version: '512', compatible_brands: 'isomiso2avc1mp41', encoder: 'Lavf59', 'com.apple.quicktime.make': 'Apple', 'com.apple.quicktime.model': 'iPhone 15' } },
        // A QuickTime timecode track says when, not where.
        streams: [{ codec_type: 'video', tags: { rotate: '90', handler_name: 'VideoHandler', vendor_id: '[0][0][0][0]' } }, { codec_type: 'audio' }, { codec_type: 'data', codec_tag_string: 'tmcd' }],
      }),
    ).toEqual([]);
    expect(privateContainerMetadata({})).toEqual([]);
  });
});

describe('remuxWithoutMetadataArgs', () => {
  it('copies video (not cover art) and audio without metadata, chapters or other tracks, with the index in front for MP4/MOV', () => {
    expect(remuxWithoutMetadataArgs('in', 'out', 'mp4').join(' ')).toContain('-i in -map 0:V -map 0:a? -c copy -map_metadata -1 -map_chapters -1 -movflags +faststart -f mp4 -y out');
    expect(remuxWithoutMetadataArgs('in', 'out', 'mov').slice(-5)).toEqual(['+faststart', '-f', 'mov', '-y', 'out']);
    const webm = remuxWithoutMetadataArgs('in', 'out', 'webm');
    expect(webm.slice(-4)).toEqual(['-f', 'webm', '-y', 'out']);
    expect(webm).not.toContain('-movflags');
  });
});

describe('remuxFormat', () => {
  const isoBmff = 'mov,mp4,m4a,3gp,3g2,mj2';
  it('keeps the container the upload is, whatever its MIME type said', () => {
    expect(remuxFormat({ format: { format_name: isoBmff, tags: { major_brand: 'qt  ' } } })).toBe('mov');
    expect(remuxFormat({ format: { format_name: isoBmff, tags: { major_brand: 'isom' } } })).toBe('mp4');
    expect(remuxFormat({ format: { format_name: isoBmff, tags: { major_brand: 'mp42' } } })).toBe('mp4');
    expect(remuxFormat({ format: { format_name: isoBmff } })).toBe('mp4');
    // A MOV made from an MP4 by ffmpeg carries the MP4's major_brand as a metadata key, which ffprobe reports over the ftyp box's.
    expect(remuxFormat({ format: { format_name: isoBmff, tags: { major_brand: 'isom' } } }, 'qt  ')).toBe('mov');
    expect(remuxFormat({ format: { format_name: isoBmff, tags: { major_brand: 'qt  ' } } }, 'isom')).toBe('mp4');
    // QuickTime's PCM audio under an ISO brand (a converter's output declared video/mp4).
    expect(remuxFormat({ format: { format_name: isoBmff, tags: { major_brand: 'isom' } }, streams: [{ codec_type: 'video', codec_name: 'h264' }, { codec_type: 'audio', codec_name: 'pcm_s16le' }] })).toBe('mov');
  });

  it('writes WebM only when every codec is one WebM allows, else Matroska', () => {
    const mkv = (codecs: Array<[string, string]>) => ({ format: { format_name: 'matroska,webm' }, streams: codecs.map(([codec_type, codec_name]) => ({ codec_type, codec_name })) });
    expect(remuxFormat(mkv([['video', 'vp8'], ['audio', 'opus']]))).toBe('webm');
    expect(remuxFormat(mkv([['video', 'vp9'], ['audio', 'vorbis'], ['subtitle', 'webvtt']]))).toBe('webm');
    expect(remuxFormat(mkv([['video', 'h264'], ['audio', 'aac']]))).toBe('matroska');
    expect(remuxFormat(mkv([['video', 'av1'], ['audio', 'flac']]))).toBe('matroska');
  });

  it('refuses a container it has no muxer for', () => {
    expect(() => remuxFormat({ format: { format_name: 'avi' } })).toThrow('no muxer to re-write a avi container with');
  });
});

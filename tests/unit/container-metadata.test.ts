import { privateContainerMetadata, remuxWithoutMetadataArgs } from '../../services/shared/media/ffmpeg';

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
        { index: 2, codec_type: 'data', tags: { handler_name: 'GoPro MET' } },
      ],
    });
    expect(found).toEqual(['com.apple.quicktime.location.ISO6709', 'location-eng', 'title', 'comment', 'xmp', 'stream 1: title', 'data stream 2']);
  });

  it('finds nothing in what ffmpeg and phones write that says neither where nor what', () => {
    expect(
      privateContainerMetadata({
        format: { tags: { major_brand: 'isom', minor_version: '512', compatible_brands: 'isomiso2avc1mp41', encoder: 'Lavf59', 'com.apple.quicktime.make': 'Apple', 'com.apple.quicktime.model': 'iPhone 15' } },
        streams: [{ codec_type: 'video', tags: { rotate: '90', handler_name: 'VideoHandler', vendor_id: '[0][0][0][0]' } }, { codec_type: 'audio' }],
      }),
    ).toEqual([]);
    expect(privateContainerMetadata({})).toEqual([]);
  });
});

describe('remuxWithoutMetadataArgs', () => {
  it('copies video (not cover art) and audio without metadata, chapters or data tracks, in the container of the MIME type', () => {
    const mp4 = remuxWithoutMetadataArgs('in', 'out', 'video/mp4');
    expect(mp4.join(' ')).toContain('-i in -map 0:V -map 0:a? -c copy -map_metadata -1 -map_chapters -1 -movflags +faststart -f mp4 -y out');
    expect(remuxWithoutMetadataArgs('in', 'out', 'video/quicktime')).toContain('mov');
    const webm = remuxWithoutMetadataArgs('in', 'out', 'video/webm; codecs="vp8, opus"');
    expect(webm.slice(-4)).toEqual(['-f', 'webm', '-y', 'out']);
    expect(webm).not.toContain('-movflags');
  });

  it('refuses a type it has no container for', () => {
    expect(() => remuxWithoutMetadataArgs('in', 'out', 'image/jpeg')).toThrow('no container to re-write image/jpeg in');
  });
});

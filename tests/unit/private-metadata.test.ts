import { deletionsOf, PRIVATE_METADATA_DELETIONS, privateTagsIn } from '../../services/shared/media/private-metadata';

describe('privateTagsIn', () => {
  it('finds location in every block ExifTool reports it from, and free-text descriptions', () => {
    const tags = {
      'GPS:GPSLatitude': 48.85,
      'XMP-exif:GPSLongitude': 2.29,
      'XMP-photoshop:City': 'Paris',
      'XMP-iptcExt:LocationShownCity': 'Paris',
      'IPTC:Country-PrimaryLocationName': 'France',
      'IPTC:Sub-location': 'Eiffel Tower',
      'Doc1:UserData:GPSCoordinates': '48.85 2.29',
      'Composite:GPSPosition': '48.85 2.29',
      'IFD0:ImageDescription': 'at home',
      'ExifIFD:UserComment': 'at home',
      'XMP-dc:Description': 'at home',
      'IPTC:Caption-Abstract': 'at home',
      'PNG:Description': 'at home',
      'File:Comment': 'at home',
      'File:EmbeddedVideo': '(Binary data 2902 bytes)',
    };
    expect(privateTagsIn(tags)).toEqual(Object.keys(tags));
  });

  it('leaves what display and the file itself need', () => {
    expect(
      privateTagsIn({
        SourceFile: '/tmp/x.jpg',
        'IFD0:Orientation': 6,
        'IFD0:Make': 'TestCam',
        'ICC_Profile:ProfileDescription': 'Display P3',
        'ICC-header:ProfileConnectionSpace': 'XYZ',
        'System:FileName': 'original.jpg',
        'File:ImageWidth': 400,
        'Composite:ImageSize': '400x240',
        'XMP-hdrgm:Version': '1.0',
        // Points in the picture, not places.
        'ExifIFD:SubjectLocation': '200 120',
        'Sony:FocusLocation': '6000 4000 3000 2000',
        'Canon:AFPointsLocation': 1,
        'Panasonic:FaceDetectedLocation': '10 10 20 20',
      }),
    ).toEqual([]);
  });

  it('finds a place in names the deletion list does not cover, and deletes those by name', () => {
    const tags = { 'XMP-tiff:ImageDescription': 'at home', 'PNG:Title': 'at home', 'Panasonic:City': 'Paris', 'Composite:GPSPosition': '48.85 2.29', 'Doc1:UserData:GPSCoordinates': '48.85 2.29' };
    expect(privateTagsIn(tags)).toEqual(Object.keys(tags));
    // Composite tags go with their sources; an embedded document goes as a whole trailer.
    expect(deletionsOf(privateTagsIn(tags))).toEqual(['-XMP-tiff:ImageDescription=', '-PNG:Title=', '-Panasonic:City=']);
  });

  it('deletes whole location groups and trailers, never all metadata (orientation and ICC stay)', () => {
    expect(PRIVATE_METADATA_DELETIONS).toEqual(expect.arrayContaining(['-GPS:all=', '-IPTC:all=', '-XMP:GPS*=', '-Trailer:all=']));
    expect(PRIVATE_METADATA_DELETIONS).not.toContain('-all=');
    expect(PRIVATE_METADATA_DELETIONS.filter((arg) => /orientation|icc/i.test(arg))).toEqual([]);
  });
});

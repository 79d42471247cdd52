import { decodeBinaryFrame } from '../../src/modules/gpu/comfyui/comfyui-binary-frame';
import { ComfyProtocolError } from '../../src/modules/gpu/comfyui/comfyui.errors';

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
};

const JPEG = Buffer.from('ffd8ffe000104a464946', 'hex');

describe('decodeBinaryFrame', () => {
  it('decodes a legacy PREVIEW_IMAGE (type 1) with its format word', () => {
    const frame = decodeBinaryFrame(Buffer.concat([u32(1), u32(1), JPEG]));
    expect(frame).toEqual({ kind: 'preview', eventType: 1, imageType: 'image/jpeg', image: JPEG, metadata: null });
    const png = decodeBinaryFrame(Buffer.concat([u32(1), u32(2), Buffer.from('89504e47', 'hex')]));
    expect(png).toMatchObject({ kind: 'preview', imageType: 'image/png' });
  });

  it('decodes PREVIEW_IMAGE_WITH_METADATA (type 4) as captured (metadata length 0xa6)', () => {
    const metadata = JSON.stringify({
      node_id: '2',
      prompt_id: '29c610f1-8ae2-4a60-88c0-120d4d0cf66f',
      display_node_id: '2',
      parent_node_id: null,
      real_node_id: '2',
      image_type: 'image/jpeg',
    })
      .replace(/,/g, ', ')
      .replace(/":/g, '": ');
    const meta = Buffer.from(metadata, 'utf8');
    expect(meta.length).toBe(0xa6);
    const frame = decodeBinaryFrame(Buffer.concat([u32(4), u32(meta.length), meta, JPEG]));
    expect(frame).toEqual({
      kind: 'preview',
      eventType: 4,
      imageType: 'image/jpeg',
      image: JPEG,
      metadata: { nodeId: '2', promptId: '29c610f1-8ae2-4a60-88c0-120d4d0cf66f', displayNodeId: '2', realNodeId: '2' },
    });
  });

  it('decodes TEXT (type 3) and passes unknown types through', () => {
    const text = decodeBinaryFrame(Buffer.concat([u32(3), u32(2), Buffer.from('12hello')]));
    expect(text).toEqual({ kind: 'text', eventType: 3, nodeId: '12', text: 'hello' });
    const unknown = decodeBinaryFrame(Buffer.concat([u32(9), u32(0)]));
    expect(unknown).toMatchObject({ kind: 'unknown', eventType: 9 });
  });

  it('rejects truncated or inconsistent frames with a protocol error', () => {
    expect(() => decodeBinaryFrame(Buffer.from([0, 0, 0, 1]))).toThrow(ComfyProtocolError);
    expect(() => decodeBinaryFrame(Buffer.concat([u32(4), u32(500), Buffer.from('{}')]))).toThrow(ComfyProtocolError);
    expect(() => decodeBinaryFrame(Buffer.concat([u32(4), u32(3), Buffer.from('{x}')]))).toThrow(ComfyProtocolError);
  });
});

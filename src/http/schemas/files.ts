// Responses of /files: an uploaded file's metadata (its bytes come from /files/{id}/content).
import { z } from 'zod';
import { EXAMPLE, instant, pageOf, uuid } from './common.ts';

export const StoredFile = z.strictObject({
  id: uuid,
  name: z.string(),
  content_type: z.string().describe('Detected from the content, not taken from the client'),
  size_bytes: z.int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  created_at: instant,
}).meta({
  id: 'StoredFile',
  examples: [{
    id: EXAMPLE.fileId, name: 'report.csv', content_type: 'text/csv', size_bytes: 1024,
    sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', created_at: EXAMPLE.at,
  }],
});

export const fileData = z.strictObject({ file: StoredFile });
export const filePage = pageOf(StoredFile);

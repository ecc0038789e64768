import { MongoBulkWriteError } from 'mongodb';
import request from 'supertest';
import { withoutQueryValues } from '../../src/http/app';
import { createLogger, safeError } from '../../src/logger';
import { FHIR_JSON, startTestServer } from '../support/server';
import { tokenFor } from '../support/tokens';

/** Log lines never hold tokens or resource contents (issue 11): the audit trail keeps who saw what. */
describe('log lines', () => {
  it('hold no token, no resource content and no search value', async () => {
    const lines: string[] = [];
    const logged = await startTestServer(
      __filename,
      {},
      { logger: createLogger('info', { write: (l: string) => lines.push(l) }) },
    );
    try {
      const token = await tokenFor({ sub: 'log-user', scope: 'system/*.cruds' });
      const authorization = `Bearer ${token}`;
      await request(logged.rawApp)
        .post('/fhir/Patient')
        .set('Authorization', authorization)
        .set('Content-Type', FHIR_JSON)
        .set('If-None-Exist', 'identifier=urn:ssn|secret-ssn-123')
        .send({ resourceType: 'Patient', name: [{ family: 'Privatecontentname' }] })
        .expect(201);
      await request(logged.rawApp)
        .get('/fhir/Patient?name=Searchedsecretname&_count=5')
        .set('Authorization', authorization)
        .expect(200);
      const text = lines.join('\n');
      expect(text).toContain('/fhir/Patient?name=…&_count=…');
      for (const secret of [token, 'Privatecontentname', 'Searchedsecretname', 'secret-ssn-123']) {
        expect(text).not.toContain(secret);
      }
    } finally {
      await logged.close();
    }
  });

  it('keep an error to its type, message, code and stack: no document the driver failed on', () => {
    const error = new MongoBulkWriteError(
      {
        message: 'E11000 duplicate key error',
        code: 11000,
        writeErrors: [{ index: 0, code: 11000, errmsg: 'dup', op: { resource: { name: 'Secretdocumentname' } } }],
      } as never,
      {
        insertedCount: 0,
        matchedCount: 0,
        modifiedCount: 0,
        deletedCount: 0,
        upsertedCount: 0,
        insertedIds: {},
        upsertedIds: {},
      } as never,
    );
    const logged = JSON.stringify(safeError(error));
    expect(logged).toContain('E11000 duplicate key error');
    expect(logged).not.toContain('Secretdocumentname');
    expect(withoutQueryValues('/fhir/Patient?identifier=a|b&name=c')).toBe('/fhir/Patient?identifier=…&name=…');
  });
});

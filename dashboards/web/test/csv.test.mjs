import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toCSV } from '../src/csv.js';

test('CSV quotes what needs quoting and writes null as empty', () => {
  const csv = toCSV(['name', 'value', 'note'], [
    ['a', 1.5, null],
    ['b,c', 'Infinity', 'say "hi"\nbye'],
    ['x', { lr: 0.1 }, [1, 2]],
  ]);
  assert.equal(
    csv,
    'name,value,note\r\n' + 'a,1.5,\r\n' + '"b,c",Infinity,"say ""hi""\nbye"\r\n' + 'x,"{""lr"":0.1}","[1,2]"\r\n',
  );
});

test('CSV of no rows is the header', () => {
  assert.equal(toCSV(['a'], []), 'a\r\n');
});

export { codePointLength, describeValue } from '../common/schema/schema-validator';
export { checkScalarValue } from './input-value.schema';

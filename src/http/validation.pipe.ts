import { BadRequestException, ValidationPipe, type ValidationError } from '@nestjs/common';

/** class-validator errors as `{ field, message }`, the first field also as `field`: "400 naming the field". */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    exceptionFactory: (errors: ValidationError[]) => {
      const fields = flatten(errors);
      return new BadRequestException({
        statusCode: 400,
        error: 'invalid_request',
        message: fields.map((f) => `${f.field}: ${f.message}`).join('; '),
        field: fields[0]?.field,
        fields,
      });
    },
  });
}

function flatten(errors: ValidationError[], parent = ''): { field: string; message: string }[] {
  const out: { field: string; message: string }[] = [];
  for (const error of errors) {
    const field = parent ? `${parent}.${error.property}` : error.property;
    for (const message of Object.values(error.constraints ?? {})) {
      out.push({
        field,
        message: message.startsWith(`${error.property} `) ? message.slice(error.property.length + 1) : message,
      });
    }
    if (error.children?.length) out.push(...flatten(error.children, field));
  }
  return out;
}

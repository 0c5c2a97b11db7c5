/* info.h -- the "# rcproxy" section of INFO. */
#ifndef PX_INFO_H
#define PX_INFO_H

#include "proxy/proxy.h"

/* Append "# rcproxy\r\n" and its key:value lines (each ending in CRLF). */
void px_info_section(px_ctx *ctx, px_buf *out);

#endif

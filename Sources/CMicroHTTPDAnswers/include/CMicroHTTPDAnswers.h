// libmicrohttpd answers some malformed requests itself (400, 413, 414, 431, 505) with fixed HTML
// bodies and offers no option to change them. This target lets the server answer those too, in
// its own JSON error shape (SPEC §8): see answers.c.
#ifndef EMUPANEL_MHD_ANSWERS_H
#define EMUPANEL_MHD_ANSWERS_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>

/// Answers an error libmicrohttpd found itself, on the connection's own thread. Returns MHD_NO
/// when it wrote the answer itself, so libmicrohttpd closes the connection.
typedef enum MHD_Result (*emupanel_mhd_error_answer)(struct MHD_Connection *connection, unsigned int status);

/// Installs (or with NULL removes) the process-wide answer to libmicrohttpd's own errors.
void emupanel_mhd_set_error_answer(emupanel_mhd_error_answer answer);

/// libmicrohttpd's own MHD_queue_response, for every response the server makes itself.
enum MHD_Result emupanel_mhd_queue_response(struct MHD_Connection *connection, unsigned int status,
                                            struct MHD_Response *response);

#endif

// libmicrohttpd 0.9.75 builds its own error answers (transmit_error_response in connection.c)
// from fixed HTML strings and queues them with its exported MHD_queue_response, called through
// the PLT. Defining MHD_queue_response here interposes on those calls (the executable's
// definition comes first in the dynamic linker's search order): an error status queued by the
// library itself goes to the installed answer instead. The server's own responses never come
// through here; they call emupanel_mhd_queue_response, which goes straight to the library.
//
// The answer writes its response to the socket itself rather than queueing it: for errors found
// while parsing the headers (a bad Content-Length) 0.9.75 overwrites the connection's state after
// queueing and sends the status line and headers twice.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include "CMicroHTTPDAnswers.h"

typedef enum MHD_Result (*queue_function)(struct MHD_Connection *, unsigned int, struct MHD_Response *);

static queue_function library_queue;
static pthread_once_t library_queue_found = PTHREAD_ONCE_INIT;
static _Atomic(emupanel_mhd_error_answer) error_answer;

static void find_library_queue(void)
{
    library_queue = (queue_function) dlsym(RTLD_NEXT, "MHD_queue_response");
}

void emupanel_mhd_set_error_answer(emupanel_mhd_error_answer answer)
{
    atomic_store(&error_answer, answer);
}

enum MHD_Result emupanel_mhd_queue_response(struct MHD_Connection *connection, unsigned int status,
                                            struct MHD_Response *response)
{
    pthread_once(&library_queue_found, find_library_queue);
    if (library_queue == NULL)
        return MHD_NO;
    return library_queue(connection, status, response);
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *connection, unsigned int status,
                                   struct MHD_Response *response)
{
    emupanel_mhd_error_answer answer = atomic_load(&error_answer);
    if (answer != NULL && status >= 400)
        return answer(connection, status);
    return emupanel_mhd_queue_response(connection, status, response);
}

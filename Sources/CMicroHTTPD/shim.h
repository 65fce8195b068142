// The variadic libmicrohttpd entry points emupanel needs, made callable
// from Swift (Swift does not import C variadic functions).
#ifndef EMUPANEL_MHD_SHIM_H
#define EMUPANEL_MHD_SHIM_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>

/// Starts a daemon with every option passed as one MHD_OPTION_ARRAY.
static inline struct MHD_Daemon *
emupanel_mhd_start(unsigned int flags, uint16_t port,
                   MHD_AccessHandlerCallback handler, void *handler_cls,
                   const struct MHD_OptionItem *options)
{
    return MHD_start_daemon(flags, port, NULL, NULL, handler, handler_cls,
                            MHD_OPTION_ARRAY, options, MHD_OPTION_END);
}

/// The port the daemon's listening socket is bound to (0 when unknown).
static inline uint16_t
emupanel_mhd_bound_port(struct MHD_Daemon *daemon)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info == NULL ? 0 : info->port;
}

/// The client's socket address, or NULL.
static inline const struct sockaddr *
emupanel_mhd_client_sockaddr(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return info == NULL ? NULL : info->client_addr;
}

/// The connection's socket (for the request deadline, which shuts it down), or -1.
static inline int
emupanel_mhd_connection_fd(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info == NULL ? -1 : info->connect_fd;
}

/// What the notify-connection callback stored for this connection, or NULL.
static inline void *
emupanel_mhd_socket_context(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info == NULL ? NULL : info->socket_context;
}

#endif

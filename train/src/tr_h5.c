/* tr_h5.c - HDF5 error silencing and the lock around train/'s HDF5 calls. */
#include "tr_h5.h"

#include <pthread.h>
#include <stdio.h>

#include "tr_safetensors.h"

/* Serial HDF5 is not thread-safe: every HDF5 section of train/ holds this lock. */
static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;

void tr_h5_quiet_begin(tr_h5_quiet *q)
{
    pthread_mutex_lock(&h5_lock);
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void tr_h5_quiet_end(const tr_h5_quiet *q)
{
    H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
    pthread_mutex_unlock(&h5_lock);
}

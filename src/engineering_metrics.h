/*-------------------------------------------------------------------------
 *
 * engineering_metrics.h
 *		Declarations shared between the module's subsystems.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef ENGINEERING_METRICS_H
#define ENGINEERING_METRICS_H

#ifndef EM_VERSION
#error "EM_VERSION must be defined by the Makefile"
#endif

/* worker.c */
extern bool em_preloaded;
extern void em_register_workers(void);

/* settings.c */
extern void em_define_settings(void);

#endif							/* ENGINEERING_METRICS_H */

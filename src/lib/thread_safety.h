#pragma once
// Clang's thread-safety attributes (-Wthread-safety), behind macros: under clang they let the
// compiler prove that data is only touched with its lock held; under GCC, which builds the kernel,
// they expand to nothing. scripts/check-thread-safety.sh (ctest check:thread-safety) runs clang
// over the kernel sources with -Wthread-safety -Werror.
//
//   constinit IrqSpinLock g_lock { "heap", LockRank::kHeap };
//   uint64_t g_bytes AETHELOS_GUARDED_BY(g_lock) = 0;
//   void grow_locked() AETHELOS_REQUIRES(g_lock);   // callers must hold g_lock
//
// Reference: https://clang.llvm.org/docs/ThreadSafetyAnalysis.html

#if defined(__clang__)
#define AETHELOS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define AETHELOS_THREAD_ANNOTATION(x)
#endif

// A type whose objects are locks ("capabilities"); `x` names the kind in the messages.
#define AETHELOS_CAPABILITY(x) AETHELOS_THREAD_ANNOTATION(capability(x))
// An RAII type: its constructor acquires (AETHELOS_ACQUIRE(lock)), its destructor releases.
#define AETHELOS_SCOPED_CAPABILITY AETHELOS_THREAD_ANNOTATION(scoped_lockable)
// Data that may only be read or written with `x` held.
#define AETHELOS_GUARDED_BY(x) AETHELOS_THREAD_ANNOTATION(guarded_by(x))
// A pointer whose pointee is guarded by `x` (the pointer itself is not).
#define AETHELOS_PT_GUARDED_BY(x) AETHELOS_THREAD_ANNOTATION(pt_guarded_by(x))
// A function the caller must call with the locks held (and which leaves them held).
#define AETHELOS_REQUIRES(...) AETHELOS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
// A function that acquires / releases the locks (no argument in a member: `this`).
#define AETHELOS_ACQUIRE(...) AETHELOS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define AETHELOS_RELEASE(...) AETHELOS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
// Acquires when it returns `success` (the first argument), e.g. AETHELOS_TRY_ACQUIRE(true).
#define AETHELOS_TRY_ACQUIRE(...) AETHELOS_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
// A function the caller must call without the locks (it takes them itself).
#define AETHELOS_EXCLUDES(...) AETHELOS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// A run-time check that the lock is held: afterwards the analysis assumes it is.
#define AETHELOS_ASSERT_CAPABILITY(x) AETHELOS_THREAD_ANNOTATION(assert_capability(x))
// A function that returns (a reference to) the lock `x`.
#define AETHELOS_RETURN_CAPABILITY(x) AETHELOS_THREAD_ANNOTATION(lock_returned(x))
// Opts a function out of the analysis: for what it cannot follow (a lock handed across a context
// switch, a deliberate misuse in a fault test). Say why beside each use.
#define AETHELOS_NO_THREAD_SAFETY_ANALYSIS AETHELOS_THREAD_ANNOTATION(no_thread_safety_analysis)

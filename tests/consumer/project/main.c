/* Uses the installed rcgc: an object, a list, a refcount. */
#include <rcgc.h>
#include <stdio.h>

int main(void)
{
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    if (rt == NULL)
        return 1;
    rcgc_list *l = rcgc_list_new(rt);
    rcgc_list *item = rcgc_list_new(rt);
    rcgc_list_append(l, RCGC_OBJ(item));
    printf("refcount=%zu len=%zu\n", rcgc_refcount(RCGC_OBJ(item)), rcgc_list_len(l));
    rcgc_decref(RCGC_OBJ(item));
    rcgc_decref(RCGC_OBJ(l));
    rcgc_runtime_free(rt);
    return 0;
}
